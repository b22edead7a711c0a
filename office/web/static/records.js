// The record pages: "tick all" on the list; the place of the recording on a small map
// (Leaflet, vendored; with no tile server the marker stands on a plain background).
(function () {
  "use strict";
  var all = document.getElementById("pick-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("#records input[name='bulk-picked']").forEach(function (box) {
        box.checked = all.checked;
      });
    });
  }
  var el = document.getElementById("record-map");
  var data = document.getElementById("record-place");
  if (el && data && window.L) {
    var place = JSON.parse(data.textContent);
    var map = L.map(el, { zoomSnap: 0.5 });
    if (el.dataset.tiles) {
      L.tileLayer(el.dataset.tiles, { maxZoom: 19, attribution: el.dataset.tilesAttribution || "" }).addTo(map);
    }
    L.control.scale({ imperial: false }).addTo(map);
    var at = [place.lat, place.lon];
    L.circle(at, { radius: Math.max(place.acc, 5), weight: 1, className: "record-accuracy" }).addTo(map);
    L.circleMarker(at, { radius: 7, weight: 2, className: "record-marker" }).addTo(map);
    map.setView(at, 16);
    window.jaranijoRecordMap = { map: map, at: at };
  }
})();
