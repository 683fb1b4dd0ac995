/* Validation page: agree / disagree with the judge per axis. Built on rating.js (loaded first), which
 * already gives digits, j/k, Backspace, c/o/t/f, Ctrl+Enter, `?`, drafts, retries and the heartbeat.
 * Here: `a` agrees and `d` disagrees on the current axis, the corrected score and the verdict are kept
 * consistent on screen (the server applies the same rules), and the judge's cited messages are
 * highlighted for the axis in focus. */
(function () {
  "use strict";
  var api = window.MHSDRating;
  var root = document.getElementById("rating-root");
  if (!api || !root) { return; }
  var editable = root.dataset.editable === "1";

  function verdictRadio(fieldset, verdict) {
    return fieldset.querySelector('input[data-verdict="' + verdict + '"]');
  }
  function sync(fieldset) {
    var disagree = verdictRadio(fieldset, "disagree");
    fieldset.classList.toggle("disagreeing", !!(disagree && disagree.checked));
  }
  function choose(fieldset, verdict) {
    var radio = fieldset && verdictRadio(fieldset, verdict);
    if (!radio || radio.disabled) { return; }
    if (!radio.checked) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));  // htmx saves on change
    }
    radio.focus();
  }

  function highlight(fieldset) {
    document.querySelectorAll("#transcript .msg.cited").forEach(function (m) { m.classList.remove("cited"); });
    if (!fieldset) { return; }
    (fieldset.dataset.cited || "").split(",").forEach(function (n) {
      var msg = n && document.getElementById("msg-" + n);
      if (msg) { msg.classList.add("cited"); }
    });
  }

  document.addEventListener("change", function (e) {
    var t = e.target;
    var fieldset = t.closest && t.closest("fieldset.axis.verdict");
    if (!fieldset) { return; }
    if (t.dataset.verdict === "agree" && t.checked) {
      // Agreeing clears the corrected score (the server does the same).
      fieldset.querySelectorAll('input[name^="value__"]').forEach(function (r) { r.checked = false; });
    } else if (t.name.indexOf("value__") === 0 && t.checked) {
      var disagree = verdictRadio(fieldset, "disagree");
      if (disagree) { disagree.checked = true; }  // a corrected score is a disagreement (saved as one)
    }
    sync(fieldset);
  });
  document.addEventListener("click", function (e) {
    var clear = e.target.closest && e.target.closest("[data-clear-axis]");
    if (clear) { setTimeout(function () { sync(clear.closest("fieldset.axis")); }, 0); }
    var cite = e.target.closest && e.target.closest("[data-cite]");
    if (cite) { highlight(cite.closest("fieldset.axis")); }
  });
  document.addEventListener("focusin", function (e) {
    var fieldset = e.target.closest && e.target.closest("fieldset.axis.verdict");
    if (fieldset) { highlight(fieldset); }
  });

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey) { return; }
    if (api.isTyping(document.activeElement)) { return; }
    var dialog = document.getElementById("shortcuts");
    if (dialog && dialog.open) { return; }
    if ((e.key === "a" || e.key === "d") && editable) {
      e.preventDefault();
      choose(api.currentAxis(), e.key === "a" ? "agree" : "disagree");
    }
  });

  document.querySelectorAll("fieldset.axis.verdict").forEach(sync);
  highlight(api.currentAxis());
})();
