// The fleet map and the kit's track: Leaflet, vendored; works with no tiles (no internet).
// Rows are swapped by htmx (SSE, out-of-band by id); this file moves the markers.
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
  function graticule(map) {
    var layer = L.layerGroup().addTo(map);
    function draw() {
      layer.clearLayers();
      var b = map.getBounds();
      var span = Math.max(b.getNorth() - b.getSouth(), b.getEast() - b.getWest());
      var steps = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
      var step = steps[steps.length - 1];
      for (var i = 0; i < steps.length; i++) { if (span / steps[i] <= 8) { step = steps[i]; break; } }
      var opts = { className: "graticule", interactive: false, weight: 1 };
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
  var fleetEl = document.getElementById("fleet-map");
  if (fleetEl) {
    var map = baseMap(fleetEl);
    var markers = new Map();
    var state = { map: map, markers: markers, updates: 0, loadedAt: Date.now() };
    window.jaranijoFleet = state;

    var place = function (k) {
      var m = markers.get(k.id);
      if (k.lat === null || k.lon === null) { return m; }
      var cls = "kit-marker " + k.presence + (k.stale ? " stale" : "");
      if (!m) {
        m = L.circleMarker([k.lat, k.lon], { radius: 8, weight: 2, className: cls });
        // Labels on the map while they fit; a big fleet shows them on hover.
        m.bindTooltip(markers.size < 150 ? k.tid : k.label, { permanent: markers.size < 150,
          direction: "right", offset: [10, 0], className: "kit-label" });
        m.on("click", function () { window.location.href = "/kits/" + encodeURIComponent(k.id) + "/"; });
        m.addTo(map);
        markers.set(k.id, m);
      } else {
        m.setLatLng([k.lat, k.lon]);
        var el = m.getElement();
        if (el) { el.setAttribute("class", cls + " leaflet-interactive"); }
      }
      m.kit = k;
      return m;
    };

    var initial = readJson("fleet-data") || [];
    initial.forEach(place);
    var pts = initial.filter(function (k) { return k.lat !== null; }).map(function (k) { return [k.lat, k.lon]; });
    if (pts.length > 1) { map.fitBounds(L.latLngBounds(pts).pad(0.2), { maxZoom: 15, padding: [24, 24] }); }
    else if (pts.length === 1) { map.setView(pts[0], 14); }
    else { map.setView([-8.1, 112.2], 10); }  // Kabupaten Blitar

    var kitsEl = document.getElementById("sse-kits");
    kitsEl.addEventListener("htmx:sseBeforeMessage", function (evt) {
      evt.preventDefault();  // JSON for the markers, nothing to swap
      JSON.parse(evt.detail.data).forEach(place);
      state.updates += 1;
    });
    // A kit new since the page loaded: its row has no place to swap into yet.
    document.body.addEventListener("htmx:oobErrorNoTarget", function (evt) {
      var row = evt.detail.content;
      if (row && row.tagName === "TR") {
        row.removeAttribute("hx-swap-oob");
        document.getElementById("fleet-rows").appendChild(row);
      }
    });
    var live = document.getElementById("live");
    var fleetDiv = document.getElementById("fleet");
    fleetDiv.addEventListener("htmx:sseOpen", function () { live.classList.add("on"); live.classList.remove("off"); });
    fleetDiv.addEventListener("htmx:sseError", function () { live.classList.add("off"); live.classList.remove("on"); });
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
