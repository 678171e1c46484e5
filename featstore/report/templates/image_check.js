// Sets data-images on the body element once the page has loaded: "ok" when every image decoded,
// else "failed:<n>". Lets a headless browser (and the test) check the figures load.
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.body.setAttribute("data-images", bad.length ? "failed:" + bad.length : "ok");
  document.body.setAttribute("data-image-count", String(imgs.length));
});
