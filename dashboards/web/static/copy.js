// Copy buttons: <button class="copy" data-copy="ID"> copies the text of
// the element with that id, and leaves it selected.
"use strict";
document.addEventListener("click", function (ev) {
  var button = ev.target.closest("button.copy");
  if (!button) return;
  var el = document.getElementById(button.dataset.copy);
  if (!el) return;
  var range = document.createRange();
  range.selectNodeContents(el);
  var sel = window.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  var done = function () {
    button.textContent = "Copied";
    setTimeout(function () { button.textContent = "Copy"; }, 1500);
  };
  var copied = false;
  try { copied = document.execCommand("copy"); } catch (e) { copied = false; }
  if (copied) { done(); return; }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(el.textContent).then(done, function () { button.textContent = "Press Ctrl+C"; });
  } else {
    button.textContent = "Press Ctrl+C";
  }
});
