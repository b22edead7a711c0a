// The fleet map and the kit's track: Leaflet, vendored; works with no tiles (no internet).
// The fleet page: markers on a canvas, rows and markers kept live from one event stream
// per browser (shared by its tabs); the kit page: the day's track.
(function () {
  "use strict";

  function baseMap(el) {
    var map = L.map(el, { zoomSnap: 0.25, preferCanvas: false });
    var tiles = el.dataset.tiles;
    if (tiles) {
      L.tileLayer(tiles, { maxZoom: 19, attribution: el.dataset.tilesAttribution || "" }).addTo(map);
    } else {
      graticule(map);
    }
    L.control.scale({ imperial: false }).addTo(map);
    return map;
  }

  // Grid lines at a round step for the zoom: a plain background stays readable.
  // In a pane of its own, under the markers (whichever renderer draws them), never hit.
  function graticule(map) {
    map.createPane("graticule");
    var layer = L.layerGroup().addTo(map);
    function draw() {
      layer.clearLayers();
      var b = map.getBounds();
      var span = Math.max(b.getNorth() - b.getSouth(), b.getEast() - b.getWest());
      var steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
      var step = steps[steps.length - 1];
      for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= 8) { step = steps[i]; break; } }
      var opts = { className: "graticule", interactive: false, weight: 1, pane: "graticule" };
      for (var lat = Math.floor(b.getSouth() / step) * step; lat <= b.getNorth(); lat += step) {
        L.polyline([[lat, b.getWest() - span], [lat, b.getEast() + span]], opts).addTo(layer);
      }
      for (var lon = Math.floor(b.getWest() / step) * step; lon <= b.getEast(); lon += step) {
        L.polyline([[b.getSouth() - span, lon], [b.getNorth() + span, lon]], opts).addTo(layer);
      }
    }
    // After Leaflet's own renderer has followed the move (it listens to the same event).
    map.on("moveend", function () { window.setTimeout(draw, 0); });
  }

  function readJson(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }

  // -- the fleet page -------------------------------------------------------------------------
  // A thousand kits must draw in well under a second: the markers are circles on one
  // canvas (not 1,000 SVG or DOM elements), labelled on hover, and rows from the live
  // stream are swapped as plain DOM (they hold no htmx attributes, so htmx need not
  // process them). The tabs of one browser share one event stream (see fleetStream).
  var LABELS_MAX = 50;  // up to this many kits the map labels each one; more: on hover

  function cssVar(name, fallback) {
    return window.getComputedStyle(document.documentElement).getPropertyValue(name).trim() || fallback;
  }

  function textEl(text) {
    var span = document.createElement("span");
    span.textContent = text;  // a kit's tid comes from the kit: never HTML
    return span;
  }

  function fleetPage(fleetEl, fleetDiv) {
    var map = baseMap(fleetEl);
    var renderer = L.canvas({ padding: 0.3 });
    var markers = new Map();
    var initial = readJson("fleet-data") || [];
    var labelled = initial.length <= LABELS_MAX;
    var big = initial.length > 200;  // smaller circles, or a town's kits are one blot
    // The palette of office.css, read once: a canvas cannot use CSS classes.
    var colours = { ok: cssVar("--ok", "#1f7a3a"), bad: cssVar("--bad", "#b42318"),
                    warn: cssVar("--warn", "#a15c00"), stale: cssVar("--stale", "#9aa3ae") };
    var tip = L.tooltip({ direction: "right", offset: [10, 0], className: "kit-label" });
    var state = { map: map, markers: markers, updates: 0, loadedAt: Date.now(), drawn: null };
    window.jaranijoFleet = state;

    // Filled by presence, grey when its place is stale; a kit not online (its place is then
    // always stale) keeps its presence in the ring: red offline, amber silent.
    var fill = function (k) {
      if (k.stale) { return colours.stale; }
      return k.presence === "online" ? colours.ok : colours.bad;
    };
    var ring = function (k) {
      return { offline: colours.bad, silent: colours.warn }[k.presence] || "#fff";
    };
    // What tests and staff tools can read of a marker (its element is a canvas pixel).
    state.marker = function (id) {
      var m = markers.get(id);
      if (!m) { return null; }
      var p = m.getLatLng();
      return { id: id, presence: m.kit.presence, stale: Boolean(m.kit.stale), tid: m.kit.tid,
               fill: m.options.fillColor, ring: m.options.color, lat: p.lat, lon: p.lng };
    };
    var hover = function (e) {
      var m = e.target;
      tip.setContent(textEl(m.kit.label)).setLatLng(m.getLatLng());
      map.openTooltip(tip);
    };
    var unhover = function () { map.closeTooltip(tip); };
    var open = function (e) {
      window.location.href = "/kits/" + encodeURIComponent(e.target.kit.id) + "/";
    };

    var place = function (k) {
      var m = markers.get(k.id);
      if (k.lat === null || k.lon === null) { return m; }
      if (!m) {
        m = L.circleMarker([k.lat, k.lon], { renderer: renderer, radius: big ? 5 : 7,
          weight: 2, color: ring(k), opacity: 1, fillOpacity: 0.95, fillColor: fill(k) });
        if (labelled) {
          m.bindTooltip(textEl(k.tid), { permanent: true, direction: "right", offset: [10, 0],
                                         className: "kit-label" });
        } else {
          m.on("mouseover", hover).on("mouseout", unhover);
        }
        m.on("click", open);
        m.kit = k;
        m.addTo(map);
        markers.set(k.id, m);
      } else {
        var was = m.getLatLng();
        if (was.lat !== k.lat || was.lng !== k.lon) { m.setLatLng([k.lat, k.lon]); }
        if (m.options.fillColor !== fill(k) || m.options.color !== ring(k)) {
          m.setStyle({ fillColor: fill(k), color: ring(k) });
        }
        m.kit = k;
      }
      return m;
    };

    initial.forEach(place);
    var pts = initial.filter(function (k) { return k.lat !== null; }).map(function (k) { return [k.lat, k.lon]; });
    if (pts.length > 1) { map.fitBounds(L.latLngBounds(pts).pad(0.2), { maxZoom: 15, padding: [24, 24] }); }
    else if (pts.length === 1) { map.setView(pts[0], 14); }
    else { map.setView([-8.1, 112.2], 10); }  // Kabupaten Blitar

    // Rows of the `rows` event (out-of-band by id): replace the kit's row, or add it at the
    // end of the table for a kit this page has not shown yet.
    var body = document.getElementById("fleet-rows");
    var applyRows = function (html) {
      var t = document.createElement("template");
      t.innerHTML = html;
      t.content.querySelectorAll("tr[id]").forEach(function (row) {
        row.removeAttribute("hx-swap-oob");
        var old = document.getElementById(row.id);
        if (old) { old.replaceWith(row); } else { body.appendChild(row); }
      });
    };
    var live = document.getElementById("live");
    var setLive = function (on) {
      live.classList.toggle("on", on);
      live.classList.toggle("off", !on);
    };
    var apply = function (type, data) {
      if (type === "rows") { applyRows(data); }
      else if (type === "kits") { JSON.parse(data).forEach(place); state.updates += 1; }
      else if (type === "live") { setLive(data === "on"); }
    };

    // "Drawn": the first frame with every marker on the canvas and the table laid out has
    // been painted. Leaflet's canvas draws in an animation frame queued before ours; the
    // second frame callback runs once that frame is out. The stream is listened to at
    // once, but opened only then (its first rows must not hold up the first frame), or
    // after a second if frames do not come (a tab opened in the background draws none).
    var stream = fleetStream(fleetDiv.dataset.events, fleetDiv.dataset.since, apply);
    window.setTimeout(stream.start, 1000);
    window.requestAnimationFrame(function () {
      window.requestAnimationFrame(function () {
        performance.mark("fleet-drawn");
        state.drawn = performance.now();
        stream.start();
      });
    });
  }

  // One event stream per browser, not per tab (a browser opens at most 6 connections to a
  // host over HTTP/1.1, and each stream holds one for good): the tabs elect a leader with
  // a Web Lock; the leader holds the EventSource and passes each event to the other tabs
  // over a BroadcastChannel. When the leader tab closes its lock is freed, the next tab
  // waiting for it becomes leader and opens the stream from the last event id it saw, so
  // the server sends what changed since. Without these APIs each tab has its own stream.
  function fleetStream(url, since, apply) {
    var lang = document.documentElement.lang || "";
    var s = { role: "starting", opened: 0, events: 0, lastEventId: since || "", live: false,
              url: null, start: null };
    window.fleetStream = s;
    var seen = function (type, data, id) {
      if (id) { s.lastEventId = id; }
      if (type === "live") { s.live = data === "on"; } else { s.events += 1; }
      apply(type, data);
    };
    var connect = function (onEvent) {
      var es = null, backoff = 3000;
      var open = function () {
        s.url = url + "?since=" + encodeURIComponent(s.lastEventId);
        es = new EventSource(s.url);
        s.opened += 1;
        ["rows", "kits"].forEach(function (type) {
          es.addEventListener(type, function (e) { onEvent(type, e.data, e.lastEventId); });
        });
        es.onopen = function () { backoff = 3000; onEvent("live", "on", ""); };
        es.onerror = function () {
          onEvent("live", "off", "");
          // The browser retries by itself (from the last event id) unless the answer was
          // no stream at all (a login that expired, a server error): then retry here.
          if (es.readyState === EventSource.CLOSED) {
            es.close();
            window.setTimeout(open, backoff);
            backoff = Math.min(backoff * 2, 60000);
          }
        };
      };
      open();
    };
    var started = false;
    var once = function (fn) {
      return function () { if (!started) { started = true; fn(); } };
    };
    if (!(navigator.locks && navigator.locks.request && window.BroadcastChannel)) {
      s.role = "alone";
      s.start = once(function () { connect(seen); });
      return s;
    }
    // The language is in the names: rows come rendered in the page's language.
    var channel = new BroadcastChannel("jaranijo-fleet-" + lang);
    s.role = "follower";
    channel.onmessage = function (e) {
      var m = e.data || {};
      if (s.role === "leader") {
        if (m.type === "hello") { channel.postMessage({ type: "live", data: s.live ? "on" : "off", id: "" }); }
      } else if (typeof m.type === "string" && m.type !== "hello") {
        seen(m.type, m.data, m.id);
      }
    };
    channel.postMessage({ type: "hello" });  // a leader answers with its stream's state
    s.start = once(function () {
      navigator.locks.request("jaranijo-fleet-stream-" + lang, function () {
        s.role = "leader";
        connect(function (type, data, id) {
          seen(type, data, id);
          channel.postMessage({ type: type, data: data, id: id });
        });
        return new Promise(function () {});  // held while this tab lives
      });
    });
    return s;
  }

  var fleetEl = document.getElementById("fleet-map");
  if (fleetEl) {
    fleetPage(fleetEl, document.getElementById("fleet"));
    // Back to a page kept in the browser's cache: the events it missed meanwhile are
    // gone, and so may be its place among the tabs. A fresh page is right again.
    window.addEventListener("pageshow", function (e) { if (e.persisted) { window.location.reload(); } });
  }

  // -- one kit's page: the day's track ---------------------------------------------------------
  var kitEl = document.getElementById("kit-map");
  if (kitEl) {
    var kmap = baseMap(kitEl);
    var track = readJson("kit-track") || [];
    window.jaranijoKit = { map: kmap, points: track.length };
    // Consecutive points of one source make a segment; offline ("track") ones are dashed.
    var seg = [], source = null;
    var flush = function () {
      if (seg.length > 1) {
        L.polyline(seg, { className: "track " + (source === "track" ? "offline" : "live"), weight: 3 }).addTo(kmap);
      }
    };
    track.forEach(function (p) {
      if (source !== null && p[2] !== source) { var last = seg[seg.length - 1]; flush(); seg = [last]; }
      source = p[2];
      seg.push([p[0], p[1]]);
      if (p[2] === "track") {
        L.circleMarker([p[0], p[1]], { radius: 3, weight: 1, className: "track-point offline" }).addTo(kmap);
      }
    });
    flush();
    if (track.length) {
      var lastP = track[track.length - 1];
      L.circleMarker([lastP[0], lastP[1]], { radius: 8, weight: 2, className: "kit-marker online" }).addTo(kmap);
      var b = L.latLngBounds(track.map(function (p) { return [p[0], p[1]]; }));
      if (track.length > 1) { kmap.fitBounds(b.pad(0.15), { maxZoom: 16 }); } else { kmap.setView(b.getCenter(), 15); }
    } else {
      kmap.setView([-8.1, 112.2], 10);
    }
  }
})();
