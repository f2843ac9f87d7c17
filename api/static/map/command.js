/* The command-centre map: red/yellow/blue grids from vector tiles, heat, events, filters,
   counts, a grid card on click, warnings, and live updates over server-sent events. */
(function (global) {
  'use strict';
  var M = global.Minqing;
  var COLOURS = { red: '#d7301f', yellow: '#f5b700', blue: '#2c7fb8' };
  var COLOUR_NAMES = { red: '红', yellow: '黄', blue: '蓝' };
  var KIND_NAMES = { urban: '城市', rural: '农村', dedicated: '专属' };
  var LEVEL_NAMES = { small: '小网格', medium: '中网格', large: '大网格' };
  var MEDIUM_FROM_ZOOM = 11;

  function el(id) { return document.getElementById(id); }

  function fillSelect(select, items) {
    items.forEach(function (item) {
      var option = document.createElement('option');
      option.value = item.value; option.textContent = item.label;
      select.appendChild(option);
    });
  }

  /* The small-grid red/yellow/blue counts of a /api/v1/layers/summary answer: the city's totals,
     or the chosen district's. */
  function pickCounts(body, district) {
    if (!body) { return null; }
    if (!district) { return body.totals ? body.totals.small : null; }
    var found = (body.districts || []).filter(function (d) { return d.code === district; })[0];
    return found && found.levels ? found.levels.small : null;
  }

  function listOf(body, keys) {
    if (Array.isArray(body)) { return body; }
    if (body && body.type === 'FeatureCollection') { return body.features; }
    for (var i = 0; i < keys.length; i++) {
      if (body && Array.isArray(body[keys[i]])) { return body[keys[i]]; }
    }
    return [];
  }

  /* A 30-day trend as an inline SVG polyline (numbers or {day, count}-like objects). */
  function sparkline(trend) {
    var values = (trend || []).map(function (point) {
      if (typeof point === 'number') { return point; }
      var v = point.count !== undefined ? point.count : point.events !== undefined ?
        point.events : point.n !== undefined ? point.n : point.value;
      return Number(v) || 0;
    });
    if (!values.length) { return '<span class="mq-muted">无趋势数据</span>'; }
    var w = 180, h = 36, max = Math.max.apply(null, values.concat([1]));
    var step = values.length > 1 ? w / (values.length - 1) : w;
    var points = values.map(function (v, i) {
      return (i * step).toFixed(1) + ',' + (h - 2 - (v / max) * (h - 4)).toFixed(1);
    }).join(' ');
    var total = values.reduce(function (a, b) { return a + b; }, 0);
    return '<svg class="mq-spark" width="' + w + '" height="' + h + '" viewBox="0 0 ' + w + ' ' +
      h + '" role="img" aria-label="近30天每日事件数"><polyline fill="none" stroke="#d7301f" ' +
      'stroke-width="1.5" points="' + points + '"/></svg>' +
      '<span class="mq-muted" data-field="trend_total">' + values.length + ' 天共 ' + total +
      ' 件，最高 ' + max + '</span>';
  }

  function start(map, config) {
    var frame = new M.Frame(config.shift);
    var state = { district: '', window: '7', category: '', source: '',
                  layerVersion: config.layerVersion, openCode: null, openLocate: null };
    var live = { messages: [], connected: false };
    var tileInfo = {};
    var layers = {};
    var hooks = global.minqing = { map: map, state: state, layers: layers, live: live,
                                   frame: frame, openGrid: openGrid, refresh: refreshAll,
                                   shiftTile: shiftTile };

    fillSelect(el('mq-district'), config.districts.map(function (d) {
      return { value: d.code, label: d.name };
    }));
    fillSelect(el('mq-category'), config.categories.map(function (c) {
      return { value: c, label: c };
    }));
    fillSelect(el('mq-source'), config.sources.map(function (s) { return { value: s, label: s }; }));

    var gridPane = map.createPane('mq-grids');
    gridPane.style.zIndex = 350;
    var outlinePane = map.createPane('mq-outlines');
    outlinePane.style.zIndex = 360;
    outlinePane.style.pointerEvents = 'none';

    function tileParams() {
      return M.query({ v: state.layerVersion, window: state.window, district: state.district,
                       category: state.category, source: state.source });
    }
    function tileUrl(layer) { return config.tiles.replace('{layer}', layer) + tileParams(); }

    function smallStyle(props) {
      var colour = COLOURS[props.colour] || '#999999';
      var other = state.district && props.district && String(props.district) !== state.district;
      return { fill: true, fillColor: colour, fillOpacity: other ? 0.12 : 0.62, stroke: true,
               color: '#ffffff', weight: 0.4, opacity: other ? 0.2 : 0.8 };
    }

    function vectorLayer(layer, pane, style, minZoom) {
      var info = tileInfo[layer] || {};
      var styles = {};
      styles[layer] = style;
      var grid = L.vectorGrid.protobuf(tileUrl(layer), {
        pane: pane, rendererFactory: L.canvas.tile, interactive: false,
        vectorTileLayerStyles: styles, minZoom: minZoom,
        maxNativeZoom: info.maxzoom || 16, minNativeZoom: info.minzoom || 0,
        keepBuffer: 1
      });
      if (frame.shift === 'gcj02') {
        grid.on('tileloadstart', function (e) { shiftTile(e.tile, e.coords); });
      }
      return grid;
    }

    /* The GCJ-02 basemap case: vector tiles are cut in WGS84, so each tile is moved (by CSS
       margins, beside Leaflet's own transform) by the GCJ-02 offset at its centre. The offset
       varies slowly: what remains is under 0.9 px at every zoom (docs/MAP.md). */
    function shiftTile(tile, coords) {
      var size = 256, z = coords.z;
      var centre = map.unproject(L.point((coords.x + 0.5) * size, (coords.y + 0.5) * size), z);
      var moved = frame.latLng(centre.lng, centre.lat);
      var a = map.project(centre, z), b = map.project(moved, z);
      // Whole pixels: a fractional margin blurs the canvas and shows the tile seams.
      tile.style.marginLeft = Math.round(b.x - a.x) + 'px';
      tile.style.marginTop = Math.round(b.y - a.y) + 'px';
    }

    function buildTileLayers() {
      layers.small = vectorLayer('small', 'mq-grids', smallStyle, 0);
      layers.medium = vectorLayer('medium', 'mq-outlines', function () {
        return { fill: false, color: '#4a4a4a', weight: 0.9, opacity: 0.8 };
      }, MEDIUM_FROM_ZOOM);
      layers.large = vectorLayer('large', 'mq-outlines', function () {
        return { fill: false, color: '#111111', weight: 2.2, opacity: 0.9 };
      }, 0);
      layers.small.addTo(map);
      layers.medium.addTo(map);
      layers.large.addTo(map);
      layers.heat = L.heatLayer([], { radius: 20, blur: 16, minOpacity: 0.25 });
      layers.events = L.layerGroup();
      layers.highlight = L.layerGroup().addTo(map);
      var overlays = {
        '小网格（红黄蓝）': layers.small, '中网格边界': layers.medium,
        '大网格边界': layers.large, '事件热力': layers.heat, '事件（需令牌）': layers.events
      };
      if (config.labels && global[config.labels]) { overlays['区县名称'] = global[config.labels]; }
      L.control.layers(null, overlays, { collapsed: false, position: 'bottomright' }).addTo(map);
      map.on('overlayadd', function (e) {
        if (e.layer === layers.heat) { loadHeat(); }
        if (e.layer === layers.events) { loadEvents(); }
      });
    }

    function refreshTiles() {
      ['small', 'medium', 'large'].forEach(function (name) {
        if (layers[name]) { layers[name].setUrl(tileUrl(name)); }
      });
    }

    function loadCounts() {
      var district = config.districts.filter(function (d) { return d.code === state.district; });
      el('mq-counts-scope').textContent = (district.length ? district[0].name : '全市') +
        ' · 小网格 · 近' + state.window + '天';
      return M.api('/api/v1/layers/summary' + M.query({ district: state.district,
                                                        window: state.window }))
        .then(function (body) {
          var counts = pickCounts(body, state.district);
          ['red', 'yellow', 'blue'].forEach(function (k) {
            el('mq-count-' + k).textContent = counts ? counts[k] : '–';
          });
          hooks.counts = counts;
        })
        .catch(function (error) { hooks.countsError = String(error.message); });
    }

    function heatWeight(props) {
      var keys = ['events_' + state.window + 'd', 'count', 'events', 'weight', 'n'];
      for (var i = 0; i < keys.length; i++) {
        if (typeof props[keys[i]] === 'number') { return props[keys[i]]; }
      }
      return 1;
    }

    function centreOf(geometry) {
      if (geometry.type === 'Point') { return geometry.coordinates; }
      var ring = geometry.type === 'Polygon' ? geometry.coordinates[0] :
        geometry.type === 'MultiPolygon' ? geometry.coordinates[0][0] : null;
      if (!ring) { return null; }
      var x = 0, y = 0;
      ring.forEach(function (p) { x += p[0]; y += p[1]; });
      return [x / ring.length, y / ring.length];
    }

    function loadHeat() {
      if (!map.hasLayer(layers.heat)) { return Promise.resolve(); }
      return M.api('/api/v1/layers/heat' + M.query({ window: state.window,
                                                     category: state.category,
                                                     district: state.district,
                                                     source: state.source }))
        .then(function (body) {
          var features = listOf(body, ['features']);
          var max = 1;
          var points = features.map(function (f) {
            var c = f.geometry && centreOf(f.geometry);
            if (!c) { return null; }
            var w = heatWeight(f.properties || {});
            max = Math.max(max, w);
            var at = frame.latLng(c[0], c[1]);
            return [at.lat, at.lng, w];
          }).filter(Boolean);
          layers.heat.setOptions({ max: max });
          layers.heat.setLatLngs(points);
        })
        .catch(function (error) { M.note('热力图暂不可用：' + error.message); });
    }

    function eventPopup(e) {
      var rows = [['类别', e.category], ['来源', e.source], ['状态', e.status],
                  ['严重程度', e.severity], ['上报时间', e.reported_at], ['网格', e.grid_code]];
      if (e.text) { rows.push(['内容', e.text]); }
      return rows.filter(function (r) { return r[1] !== undefined && r[1] !== null; })
        .map(function (r) {
          return '<div><b>' + r[0] + '</b> ' + M.escapeHtml(r[1]) + '</div>';
        }).join('');
    }

    function loadEvents() {
      if (!map.hasLayer(layers.events)) { return Promise.resolve(); }
      if (!M.token()) {
        M.note('事件图层需要登录令牌（指挥中心工作人员）');
        return Promise.resolve();
      }
      return M.api('/api/v1/events' + M.query({ window: state.window, category: state.category,
                                                source: state.source,
                                                district: state.district, limit: 1000 }))
        .then(function (body) {
          layers.events.clearLayers();
          listOf(body, ['events', 'items', 'results']).forEach(function (item) {
            var e = item.properties ? Object.assign({}, item.properties) : item;
            var lon = e.lon, lat = e.lat;
            if (item.geometry && item.geometry.type === 'Point') {
              lon = item.geometry.coordinates[0]; lat = item.geometry.coordinates[1];
            }
            if (typeof lon !== 'number' || typeof lat !== 'number') { return; }
            var sev = Number(e.severity) || 1;
            L.circleMarker(frame.latLng(lon, lat), {
              radius: 3 + sev, color: '#222', weight: 0.6, fillColor: sev >= 3 ? '#b30000' :
                '#ff7f00', fillOpacity: 0.85
            }).bindPopup(eventPopup(e)).addTo(layers.events);
          });
        })
        .catch(function (error) {
          if (error.status === 401 || error.status === 403) {
            M.note('当前令牌无权查看事件：' + error.message);
          } else { M.note('事件图层暂不可用：' + error.message); }
        });
    }

    function loadWarnings() {
      return M.api('/api/v1/warnings' + M.query({ district: state.district, limit: 20 }))
        .then(function (body) {
          var list = el('mq-warning-list');
          var items = listOf(body, ['warnings', 'items', 'results']);
          list.innerHTML = '';
          el('mq-warning-count').textContent = items.length ? '(' + items.length + ')' : '';
          items.slice(0, 20).forEach(function (w) {
            var li = document.createElement('li');
            var expected = typeof w.expected === 'number' ? w.expected.toFixed(1) : w.expected;
            li.innerHTML = '<a href="#" data-code="' + M.escapeHtml(w.code) + '">' +
              M.escapeHtml(w.name || w.code) + '</a> ' + M.escapeHtml(w.category || '') +
              ' <span class="mq-muted">' + M.escapeHtml(w.observed) + ' 件 / 预期 ' +
              M.escapeHtml(expected) + ' · ' + M.escapeHtml(w.warn_day || '') + '</span>';
            list.appendChild(li);
          });
          if (!items.length) { list.innerHTML = '<li class="mq-muted">暂无预警</li>'; }
        })
        .catch(function () { el('mq-warning-list').innerHTML = '<li class="mq-muted">预警暂不可用</li>'; });
    }

    el('mq-warning-list').addEventListener('click', function (e) {
      var code = e.target.getAttribute && e.target.getAttribute('data-code');
      if (code) { e.preventDefault(); openGrid(code, null); }
    });

    function field(name, label, value) {
      return '<div class="mq-row"><span class="mq-label">' + label + '</span>' +
        '<span data-field="' + name + '">' + M.escapeHtml(value === undefined || value === null ?
          '–' : value) + '</span></div>';
    }

    function workerText(worker) {
      if (!worker) { return null; }
      if (typeof worker === 'string') { return worker; }
      return [worker.name, worker.phone].filter(Boolean).join(' ');
    }

    function renderGrid(code, answer, card) {
      var panel = el('mq-grid');
      var c = card || {};
      var pin = c.pin || (c.pinned ? { colour: c.colour, reason: c.reason } : null);
      var colour = typeof c.colour === 'object' && c.colour ? c.colour.colour : c.colour;
      var score = c.score !== undefined ? c.score :
        (c.colour && typeof c.colour === 'object' ? c.colour.score : undefined);
      var small = answer && answer.small;
      var name = c.name || (small && small.code === code ? small.name : null);
      var kind = c.kind || (small && small.code === code ? small.kind : null);
      var worker = (c.gridworkers || []).map(workerText).filter(Boolean).join('，') ||
        (answer && answer.small.code === code ? workerText(answer.gridworker) : null);
      var parents = answer && answer.small.code === code ?
        answer.medium.name + '，' + answer.large.name :
        (c.parent && (c.parent.name || c.parent.code)) || c.parent_code;
      var district = c.district ? (c.district.name || c.district) :
        answer && answer.district ? answer.district.name : null;
      var why = colour ? (COLOUR_NAMES[colour] || colour) + (pin ? '（人工锁定：' +
        (pin.reason || '') + '）' : score !== undefined ? '（得分 ' +
        Number(score).toFixed(1) + '）' : '') : null;
      var events = c.events || {};
      var html = '<button type="button" class="mq-close" aria-label="关闭">×</button>' +
        '<div class="mq-grid-title"><i class="mq-swatch mq-' + (colour || 'none') + '"></i>' +
        M.escapeHtml(name || code) + '</div>' +
        field('code', '编码', code) +
        field('kind', '类型', (LEVEL_NAMES[c.level] || '小网格') + ' · ' +
              (KIND_NAMES[kind] || kind || '–')) +
        field('parents', '所属', parents) + field('district', '区县', district) +
        field('gridworker', '网格员', worker) + field('colour', '颜色', why) +
        field('open_events', '未办结', c.open_events !== undefined ? c.open_events : events.open) +
        field('overdue_events', '已超期',
              c.overdue_events !== undefined ? c.overdue_events : events.overdue);
      if (pin && pin.expires_at) { html += field('pin_expires', '锁定至', pin.expires_at); }
      html += '<div class="mq-row"><span class="mq-label">近30天</span>' +
        sparkline(c.trend || c.trend_30d || c.daily) + '</div>';
      if (!card) { html += '<div class="mq-muted" data-field="card_status">网格详情暂不可用</div>'; }
      panel.innerHTML = html;
      panel.classList.remove('mq-hidden');
      panel.querySelector('.mq-close').addEventListener('click', function () {
        state.openCode = null; panel.classList.add('mq-hidden'); layers.highlight.clearLayers();
      });
      hooks.lastCard = card;
    }

    function loadCard(code) {
      return M.api('/api/v1/grids/' + encodeURIComponent(code) +
                   M.query({ window: state.window }))
        .then(function (card) {
          if (state.openCode === code) { renderGrid(code, state.openLocate, card); }
        })
        .catch(function () {
          if (state.openCode === code) { renderGrid(code, state.openLocate, null); }
        });
    }

    function highlight(code) {
      return M.api('/api/v1/grids/' + encodeURIComponent(code) + '/geometry')
        .then(function (feature) {
          if (state.openCode !== code) { return; }
          layers.highlight.clearLayers();
          L.geoJSON(frame.geojson(feature), {
            style: { color: '#00e5ff', weight: 3, fill: false }, interactive: false
          }).addTo(layers.highlight);
        })
        .catch(function () { layers.highlight.clearLayers(); });
    }

    function openGrid(code, answer) {
      state.openCode = code;
      state.openLocate = answer;
      renderGrid(code, answer, undefined);
      return Promise.all([loadCard(code), highlight(code)]);
    }

    map.on('click', function (e) {
      var wgs = frame.wgs84(e.latlng);
      M.api('/api/v1/locate' + M.query({ lon: wgs[0].toFixed(7), lat: wgs[1].toFixed(7) }))
        .then(function (answer) { return openGrid(answer.small.code, answer); })
        .catch(function (error) { M.note('无法定位网格：' + error.message); });
    });

    function refreshAll() {
      refreshTiles();
      var jobs = [loadCounts(), loadHeat(), loadEvents(), loadWarnings()];
      if (state.openCode) { jobs.push(loadCard(state.openCode)); }
      return Promise.all(jobs);
    }

    ['district', 'window', 'category', 'source'].forEach(function (name) {
      el('mq-' + name).addEventListener('change', function (e) {
        state[name] = e.target.value;
        if (name === 'district') {
          var d = config.districts.filter(function (x) { return x.code === state.district; })[0];
          if (d && d.lon !== undefined) { map.flyTo(frame.latLng(d.lon, d.lat), 11); }
        }
        refreshAll();
      });
    });

    M.tokenButton(el('mq-token'), function () { refreshAll(); });

    /* Live: one EventSource; the browser reconnects by itself (retry sent by the server). */
    /* Updates gathered for 250 ms: a burst of notifications costs one reload of each part. */
    var pending = { timer: null, all: false, events: false, card: false };
    function soon(part) {
      pending[part] = true;
      if (pending.timer) { return; }
      pending.timer = setTimeout(function () {
        var due = pending;
        pending = { timer: null, all: false, events: false, card: false };
        if (due.all) { refreshAll(); return; }
        if (due.events) { loadEvents(); loadCounts(); }
        if (due.card && state.openCode) { loadCard(state.openCode); }
      }, 250);
    }
    function subscribe() {
      var source = new EventSource(config.live);
      hooks.eventSource = source;
      source.addEventListener('open', function () {
        live.connected = true; el('mq-live').classList.add('mq-on');
      });
      source.addEventListener('error', function () {
        live.connected = false; el('mq-live').classList.remove('mq-on');
      });
      source.addEventListener('hello', function (e) {
        var data = JSON.parse(e.data);
        if (data.layer_version !== null && data.layer_version !== state.layerVersion) {
          state.layerVersion = data.layer_version;
          soon('all');
        }
      });
      function record(kind, e) {
        var data = JSON.parse(e.data);
        live.messages.push({ kind: kind, data: data, received: Date.now() / 1000 });
        if (live.messages.length > 200) { live.messages.shift(); }
        return data;
      }
      source.addEventListener('layer_version', function (e) {
        var data = record('layer_version', e);
        if (data.layer_version !== null) { state.layerVersion = data.layer_version; }
        soon('all');
      });
      source.addEventListener('event', function (e) {
        var data = record('event', e);
        soon('events');
        if (state.openCode && (!data.grid_code || data.grid_code === state.openCode)) {
          soon('card');
        }
      });
      source.addEventListener('resync', function (e) { record('resync', e); soon('all'); });
    }

    function tileJson(layer) {
      return M.api(config.tilejson.replace('{layer}', layer))
        .then(function (info) { tileInfo[layer] = info; })
        .catch(function () { tileInfo[layer] = {}; });
    }

    Promise.all(['small', 'medium', 'large'].map(tileJson)).then(function () {
      buildTileLayers();
      loadCounts();
      loadWarnings();
      subscribe();
      hooks.ready = true;
    });
  }

  global.MinqingCommandMap = { start: start, pickCounts: pickCounts, sparkline: sparkline };
})(window);
