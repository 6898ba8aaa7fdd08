// wachter dashboard: the trend chart and the live progress of a running scan.
//
// Loaded with `defer` from /assets/app.js; the CSP allows no inline script, so everything
// the pages do in the browser is here. Data from the server is only ever placed with
// textContent or as chart numbers: never parsed as HTML.
(function () {
  'use strict';

  var POLL_MS = 2000;
  var FETCH_TIMEOUT_MS = 10000;
  var MAX_POLL_FAILURES = 5;
  var PALETTE = ['#1f5fa8', '#b5179e', '#2a9d8f', '#e76f51', '#6a4c93', '#8d6e00', '#00838f', '#5d4037'];
  var VULNERABLE = '#c62828';
  var MITIGATED = '#d68a00';

  /** GET `url` as JSON from our own origin, giving up after FETCH_TIMEOUT_MS. */
  function getJson(url) {
    var controller = typeof AbortController === 'function' ? new AbortController() : null;
    var timer = controller ? setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT_MS) : null;
    return fetch(url, {
      method: 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { Accept: 'application/json' },
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (timer) { clearTimeout(timer); }
      if (!response.ok) {
        throw new Error('HTTP ' + response.status);
      }
      return response.json();
    }, function (error) {
      if (timer) { clearTimeout(timer); }
      throw error;
    });
  }

  /** Only same-origin paths are fetched (the attribute comes from our template). */
  function localPath(value) {
    return typeof value === 'string' && value.charAt(0) === '/' && value.charAt(1) !== '/' &&
      value.indexOf('\\') === -1;
  }

  function note(container, text, className) {
    var p = document.createElement('p');
    p.className = className || 'chart-note';
    p.textContent = text;
    container.appendChild(p);
  }

  function count(value) {
    return typeof value === 'number' && isFinite(value) ? value : 0;
  }

  /** Seconds since the epoch of the store's `YYYY-MM-DDTHH:MM:SSZ`, or null. */
  function seconds(stamp) {
    var ms = Date.parse(stamp);
    return isNaN(ms) ? null : Math.floor(ms / 1000);
  }

  /**
   * The chart's columns from the overview's `trend` (CVE -> points, oldest first): one x
   * per scan (its start), one open-findings series per CVE, then vulnerable and mitigated
   * of the first CVE.
   */
  function trendData(trend) {
    var cves = Object.keys(trend || {}).filter(function (cve) {
      return Array.isArray(trend[cve]) && trend[cve].length > 0;
    }).sort();
    var byScan = {};
    cves.forEach(function (cve) {
      trend[cve].forEach(function (point) {
        if (!point || typeof point !== 'object') { return; }
        var x = seconds(point.started_at);
        if (x === null) { return; }
        var key = String(point.scan);
        if (!byScan[key]) { byScan[key] = { x: x, perCve: {} }; }
        byScan[key].perCve[cve] = point;
      });
    });
    var scans = Object.keys(byScan).map(function (k) { return byScan[k]; });
    scans.sort(function (a, b) { return a.x - b.x; });
    // uPlot needs strictly increasing x: scans started in the same second are nudged.
    for (var i = 1; i < scans.length; i++) {
      if (scans[i].x <= scans[i - 1].x) { scans[i].x = scans[i - 1].x + 1; }
    }
    var xs = scans.map(function (s) { return s.x; });
    var columns = [xs];
    var series = [{}];
    cves.forEach(function (cve, index) {
      columns.push(scans.map(function (s) {
        var p = s.perCve[cve];
        return p ? count(p.vulnerable) + count(p.mitigated) : null;
      }));
      series.push({
        label: cve + ' open',
        stroke: PALETTE[index % PALETTE.length],
        width: 2,
        spanGaps: true,
        points: { show: true }
      });
    });
    if (cves.length > 0) {
      var first = cves[0];
      var several = cves.length > 1;
      [['vulnerable', VULNERABLE], ['mitigated', MITIGATED]].forEach(function (pair) {
        columns.push(scans.map(function (s) {
          var p = s.perCve[first];
          return p ? count(p[pair[0]]) : null;
        }));
        series.push({
          label: first + ' ' + pair[0],
          stroke: pair[1],
          width: 1,
          dash: [6, 4],
          spanGaps: true,
          show: !several
        });
      });
    }
    return { columns: columns, series: series, scans: scans.length };
  }

  function drawTrend(container) {
    var src = container.getAttribute('data-src');
    if (!localPath(src)) { return; }
    getJson(src).then(function (overview) {
      var data = trendData(overview && overview.trend);
      if (data.scans === 0) {
        note(container, 'No scans yet');
        container.setAttribute('data-empty', 'true');
        container.setAttribute('data-drawn', 'true');
        return;
      }
      if (typeof window.uPlot !== 'function') {
        note(container, 'The chart library did not load.');
        container.setAttribute('data-drawn', 'error');
        return;
      }
      var width = function () { return Math.max(320, container.clientWidth || 640); };
      var options = {
        width: width(),
        height: 300,
        series: data.series,
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
        // Findings are whole: no ticks at fractions.
        axes: [{}, { label: 'open findings', incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000, 25000, 50000, 100000, 250000, 500000, 1000000] }],
        legend: { live: true },
        cursor: { drag: { x: false, y: false } }
      };
      var chart = new window.uPlot(options, data.columns, container);
      var resizeTimer = null;
      window.addEventListener('resize', function () {
        if (resizeTimer) { clearTimeout(resizeTimer); }
        resizeTimer = setTimeout(function () {
          chart.setSize({ width: width(), height: 300 });
        }, 150);
      });
      container.setAttribute('data-drawn', 'true');
    }).catch(function (error) {
      note(container, 'Could not load the trend (' + (error && error.message ? error.message : 'error') + ').');
      container.setAttribute('data-drawn', 'error');
    });
  }

  /** The checkpoint in words, as the server writes it on the page. */
  function checkpointText(checkpoint) {
    if (checkpoint === null || checkpoint === undefined) { return '–'; }
    if (typeof checkpoint === 'object') {
      if (typeof checkpoint.done === 'number' && typeof checkpoint.total === 'number') {
        return checkpoint.done + ' of ' + checkpoint.total + ' targets done';
      }
      if (typeof checkpoint.next === 'number') {
        var above = Array.isArray(checkpoint.done_above) ? checkpoint.done_above.length : 0;
        return (checkpoint.next + above) + ' targets done';
      }
    }
    return JSON.stringify(checkpoint).slice(0, 1024);
  }

  function setField(container, name, value) {
    var el = container.querySelector('[data-field="' + name + '"]');
    if (el) { el.textContent = String(value); }
  }

  function updateStatuses(container, statuses) {
    var body = container.querySelector('[data-field="statuses"]');
    if (!body || !statuses || typeof statuses !== 'object') { return; }
    var cells = {};
    Array.prototype.forEach.call(body.querySelectorAll('[data-status]'), function (cell) {
      cells[cell.getAttribute('data-status')] = cell;
    });
    Object.keys(statuses).sort().forEach(function (status) {
      var cell = cells[status];
      if (!cell) {
        var row = document.createElement('tr');
        var name = document.createElement('td');
        name.textContent = status;
        cell = document.createElement('td');
        cell.className = 'num';
        cell.setAttribute('data-status', status);
        row.appendChild(name);
        row.appendChild(cell);
        body.appendChild(row);
      }
      cell.textContent = String(count(statuses[status]));
    });
  }

  function followScan(container) {
    var src = container.getAttribute('data-live');
    if (!localPath(src)) { return; }
    var failures = 0;
    function poll() {
      getJson(src).then(function (detail) {
        failures = 0;
        var scan = (detail && detail.scan) || {};
        setField(container, 'state', scan.state || '?');
        setField(container, 'observations', count(scan.observations));
        setField(container, 'checkpoint', checkpointText(detail.checkpoint));
        updateStatuses(container, detail.statuses);
        container.setAttribute('data-updated', new Date().toISOString());
        if (scan.state === 'running') {
          setTimeout(poll, POLL_MS);
        } else {
          container.setAttribute('data-finished', 'true');
          var done = document.createElement('p');
          done.className = 'notice';
          done.textContent = 'The scan is ' + (scan.state || 'over') + '. ';
          var link = document.createElement('a');
          link.href = window.location.pathname;
          link.textContent = 'Reload for the changes since the previous scan.';
          done.appendChild(link);
          container.appendChild(done);
        }
      }).catch(function (error) {
        failures += 1;
        if (failures < MAX_POLL_FAILURES) {
          setTimeout(poll, POLL_MS * failures);
        } else {
          note(container, 'Live updates stopped (' + (error && error.message ? error.message : 'error') + ').', 'problem');
        }
      });
    }
    setTimeout(poll, POLL_MS);
  }

  function start() {
    Array.prototype.forEach.call(document.querySelectorAll('#trend-chart[data-src]'), drawTrend);
    Array.prototype.forEach.call(document.querySelectorAll('#scan-progress[data-live]'), followScan);
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
}());
