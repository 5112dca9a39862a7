// The console's few behaviours: copy buttons, confirmations, and the CSRF token on htmx requests.
document.addEventListener("click", function (event) {
  var copy = event.target.closest("[data-copy]");
  if (copy) {
    var text = document.getElementById(copy.dataset.copy).value;
    var done = function () { copy.textContent = "Copied"; copy.setAttribute("aria-live", "polite"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(copy, done); });
    } else {
      fallbackCopy(copy, done);
    }
  }
});
function fallbackCopy(button, done) {
  var field = document.getElementById(button.dataset.copy);
  field.select();
  if (document.execCommand("copy")) { done(); }
}
document.addEventListener("submit", function (event) {
  var message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) { event.preventDefault(); }
});
document.addEventListener("htmx:configRequest", function (event) {
  event.detail.headers["X-CSRFToken"] = document.querySelector("meta[name=csrf-token]").content;
});
