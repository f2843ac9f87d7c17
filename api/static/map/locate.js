/* The gridworker's phone page: which small grid am I in, whose is it, how far to its edge;
   draw it with my position and accuracy circle; report an incident here. */
(function (global) {
  'use strict';
  var M = global.Minqing;

  function el(id) { return document.getElementById(id); }

  function start(map, config) {
    var frame = new M.Frame(config.shift);
    var params = new URLSearchParams(global.location.search);
    // Inside a WeChat-like container the position comes in GCJ-02: ?crs=gcj02 says so.
    var crs = params.get('crs') || 'wgs84';
    var state = { position: null, answer: null };
    var drawn = L.layerGroup().addTo(map);
    var hooks = global.minqing = { map: map, state: state, frame: frame, locate: locate };

    config.categories.forEach(function (c) {
      var option = document.createElement('option');
      option.value = c; option.textContent = c;
      el('mq-report-category').appendChild(option);
    });
    el('mq-crs').value = crs;

    function say(html) { el('mq-where').innerHTML = html; }

    function describe(answer) {
      var worker = answer.gridworker ?
        M.escapeHtml(answer.gridworker.name) + ' ' + M.escapeHtml(answer.gridworker.phone) : '未配置';
      var distance = Math.round(answer.distance_to_edge_m);
      return '你在 小网格 <b data-field="small">' + M.escapeHtml(answer.small.name) + '</b>' +
        '<span class="mq-muted" data-field="code">' + M.escapeHtml(answer.small.code) +
        '</span>（<span data-field="medium">' + M.escapeHtml(answer.medium.name) + '</span>，' +
        '<span data-field="large">' + M.escapeHtml(answer.large.name) + '</span>），' +
        '网格员 <span data-field="gridworker">' + worker + '</span>，' +
        '距边界 ' +
        '<span data-field="distance">' + distance + '</span> 米';
    }

    function draw(answer, position) {
      map.invalidateSize();
      drawn.clearLayers();
      var at = frame.latLng(answer.wgs84.lon, answer.wgs84.lat);
      var bounds = L.latLngBounds([at]);
      if (position.accuracy) {
        var circle = L.circle(at, { radius: position.accuracy, color: '#1565c0', weight: 1,
                                    fillOpacity: 0.12, interactive: false }).addTo(drawn);
        bounds.extend(circle.getBounds());
      }
      L.circleMarker(at, { radius: 6, color: '#fff', weight: 2, fillColor: '#1565c0',
                           fillOpacity: 1 }).addTo(drawn);
      map.fitBounds(bounds, { maxZoom: 17, padding: [20, 20] });
      return M.api('/api/v1/grids/' + encodeURIComponent(answer.small.code) + '/geometry')
        .then(function (feature) {
          var shape = L.geoJSON(frame.geojson(feature), {
            style: { color: '#d7301f', weight: 3, fillOpacity: 0.08 }, interactive: false
          }).addTo(drawn);
          map.fitBounds(shape.getBounds().extend(bounds), { maxZoom: 17, padding: [16, 16] });
          hooks.gridDrawn = answer.small.code;
        });
    }

    function locate(position) {
      state.position = position;
      say('正在查询网格…');
      return M.api('/api/v1/locate' + M.query({ lon: position.lon, lat: position.lat,
                                                crs: position.crs,
                                                accuracy: position.accuracy }))
        .then(function (answer) {
          state.answer = answer;
          say(describe(answer));
          var warn = el('mq-ambiguous');
          if (answer.ambiguous) {
            var names = (answer.candidates || []).map(function (c) {
              return M.escapeHtml(c.name) + '（' + M.escapeHtml(c.code) + '）';
            }).join('、');
            warn.innerHTML = '注意：定位精度圈跨越网格边界，也可能在 ' + (names || '相邻网格') +
              '。请到开阔处重新定位或手动输入坐标。';
            warn.classList.remove('mq-hidden');
          } else { warn.classList.add('mq-hidden'); }
          el('mq-report-send').disabled = false;
          hooks.lastAnswer = answer;
          return draw(answer, position);
        })
        .catch(function (error) { say('定位失败：' + M.escapeHtml(error.message)); });
    }

    function fromDevice() {
      if (!navigator.geolocation) { say('此设备不支持定位，请手动输入坐标'); return; }
      navigator.geolocation.getCurrentPosition(function (p) {
        locate({ lon: p.coords.longitude, lat: p.coords.latitude,
                 accuracy: Math.round(p.coords.accuracy), crs: crs });
      }, function (error) {
        say('无法获取位置（' + M.escapeHtml(error.message) + '），请手动输入坐标');
        el('mq-manual').open = true;
      }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 10000 });
    }

    el('mq-manual-form').addEventListener('submit', function (e) {
      e.preventDefault();
      locate({ lon: el('mq-lon').value.trim(), lat: el('mq-lat').value.trim(), accuracy: null,
               crs: el('mq-crs').value });
    });

    function reportId() {
      if (global.crypto && global.crypto.randomUUID) { return global.crypto.randomUUID(); }
      return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 12);
    }

    el('mq-report').addEventListener('submit', function (e) {
      e.preventDefault();
      var p = state.position;
      if (!p) { return; }
      var result = el('mq-report-result');
      // One id per report: a retry after a lost answer is recognised, never duplicated.
      var id = el('mq-report').dataset.pendingId || reportId();
      el('mq-report').dataset.pendingId = id;
      M.api('/api/v1/events', { method: 'POST', json: {
        source: config.report_source, source_id: 'm-' + id,
        category: el('mq-report-category').value,
        severity: Number(el('mq-report-severity').value),
        text: el('mq-report-text').value, lon: Number(p.lon), lat: Number(p.lat), crs: p.crs,
        reported_at: new Date().toISOString()
      } }).then(function (body) {
        delete el('mq-report').dataset.pendingId;
        el('mq-report-text').value = '';
        result.textContent = '已上报' + (body && body.id ? '，编号 ' + body.id : '') +
          (body && body.grid_code ? '，网格 ' + body.grid_code : '');
        result.className = 'mq-ok';
      }).catch(function (error) {
        result.textContent = error.status === 401 || error.status === 403 ?
          '上报需要网格员令牌：' + error.message : '上报失败：' + error.message;
        result.className = 'mq-warn';
      });
    });

    M.tokenButton(el('mq-token'));
    map.invalidateSize();
    fromDevice();
  }

  global.MinqingLocatePage = { start: start };
})(window);
