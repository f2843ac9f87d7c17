/* Shared by the map pages: API calls with the stored token, GCJ-02 shift, small helpers. */
(function (global) {
  'use strict';

  var TOKEN_KEY = 'minqing.token';

  function token() {
    try { return global.localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  function setToken(value) {
    try {
      if (value) { global.localStorage.setItem(TOKEN_KEY, value); }
      else { global.localStorage.removeItem(TOKEN_KEY); }
    } catch (e) { /* private mode: the token lasts for this page only */ }
  }

  /* fetch JSON from the app; the token (if any) goes as a Bearer header, never in the URL. */
  function api(path, options) {
    options = options || {};
    var headers = Object.assign({ 'Accept': 'application/json' }, options.headers || {});
    var stored = token();
    if (stored) { headers['Authorization'] = 'Bearer ' + stored; }
    if (options.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(options.json);
    }
    return fetch(path, { method: options.method || 'GET', headers: headers, body: options.body,
                         cache: 'no-store' })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = null;
          try { body = text ? JSON.parse(text) : null; } catch (e) { body = { message: text }; }
          if (!response.ok) {
            var error = new Error((body && body.message) || ('HTTP ' + response.status));
            error.status = response.status;
            error.body = body;
            throw error;
          }
          return body;
        });
      });
  }

  function query(params) {
    var parts = [];
    Object.keys(params).forEach(function (key) {
      var value = params[key];
      if (value !== undefined && value !== null && value !== '') {
        parts.push(encodeURIComponent(key) + '=' + encodeURIComponent(value));
      }
    });
    return parts.length ? '?' + parts.join('&') : '';
  }

  /* WGS84 -> GCJ-02, the published forward formula (the same as gis/coords.py). */
  var A = 6378245.0, EE = 0.00669342162296594323;
  function gcjOffset(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0, s = Math.sqrt(Math.abs(x)), PI = Math.PI;
    var shared = (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * s + shared;
    dlat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    dlat += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * s + shared;
    dlon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    dlon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var rad = lat / 180.0 * PI, magic = 1 - EE * Math.sin(rad) * Math.sin(rad);
    var sq = Math.sqrt(magic);
    return [(dlon * 180.0) / (A / sq * Math.cos(rad) * PI),
            (dlat * 180.0) / ((A * (1 - EE)) / (magic * sq) * PI)];
  }
  function outOfChina(lon, lat) {
    return !(lon > 73.66 && lon < 135.05 && lat > 3.86 && lat < 53.55);
  }
  function toGcj(lon, lat) {
    if (outOfChina(lon, lat)) { return [lon, lat]; }
    var d = gcjOffset(lon, lat);
    return [lon + d[0], lat + d[1]];
  }
  /* GCJ-02 -> WGS84 by iterating the forward formula (as the server does), for map clicks. */
  function fromGcj(lon, lat) {
    var x = lon, y = lat;
    for (var i = 0; i < 30; i++) {
      var f = toGcj(x, y), dx = f[0] - lon, dy = f[1] - lat;
      x -= dx; y -= dy;
      if (Math.abs(dx) < 1e-9 && Math.abs(dy) < 1e-9) { break; }
    }
    return [x, y];
  }

  /* The map frame: WGS84, or GCJ-02 when the basemap is an Amap-style one. */
  function Frame(shift) { this.shift = shift; }
  Frame.prototype.latLng = function (lon, lat) {
    var p = this.shift === 'gcj02' ? toGcj(lon, lat) : [lon, lat];
    return L.latLng(p[1], p[0]);
  };
  Frame.prototype.wgs84 = function (latlng) {
    return this.shift === 'gcj02' ? fromGcj(latlng.lng, latlng.lat) : [latlng.lng, latlng.lat];
  };
  Frame.prototype.geojson = function (geojson) {
    if (this.shift !== 'gcj02') { return geojson; }
    var self = this;
    function move(coords) {
      if (typeof coords[0] === 'number') { return toGcj(coords[0], coords[1]); }
      return coords.map(move);
    }
    function moveGeometry(g) {
      if (!g) { return g; }
      if (g.type === 'GeometryCollection') {
        return { type: g.type, geometries: g.geometries.map(moveGeometry) };
      }
      return { type: g.type, coordinates: move(g.coordinates) };
    }
    if (geojson.type === 'FeatureCollection') {
      return { type: geojson.type, features: geojson.features.map(function (f) {
        return self.geojson(f);
      }) };
    }
    if (geojson.type === 'Feature') {
      return { type: 'Feature', id: geojson.id, properties: geojson.properties,
               geometry: moveGeometry(geojson.geometry) };
    }
    return moveGeometry(geojson);
  };

  /* Ask for a token once and keep it in this browser (localStorage). */
  function tokenButton(button, onChange) {
    function label() { button.textContent = token() ? '退出登录' : '登录令牌'; }
    label();
    button.addEventListener('click', function () {
      if (token()) { setToken(''); }
      else {
        var given = global.prompt('请输入访问令牌（由管理员用 minqing users add 发放）');
        if (given) { setToken(given.trim()); }
      }
      label();
      if (onChange) { onChange(); }
    });
  }

  function escapeHtml(text) {
    return String(text === undefined || text === null ? '' : text)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;');
  }

  function note(message, seconds) {
    var el = document.getElementById('mq-note');
    if (!el) { return; }
    el.textContent = message;
    el.classList.remove('mq-hidden');
    clearTimeout(note.timer);
    note.timer = setTimeout(function () { el.classList.add('mq-hidden'); },
                            (seconds || 6) * 1000);
  }

  global.Minqing = { api: api, query: query, token: token, setToken: setToken,
                     tokenButton: tokenButton, toGcj: toGcj, fromGcj: fromGcj, Frame: Frame,
                     escapeHtml: escapeHtml, note: note };
})(window);
