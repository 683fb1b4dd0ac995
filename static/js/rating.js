/* Rating page: keyboard shortcuts, active-time tracking for the heartbeat, save status and retries.
 * No external libraries; htmx (loaded by base.html) does the requests. Every score, comment and note
 * is saved by htmx on change; this file only adds what htmx cannot do by itself. */
(function () {
  "use strict";

  var IDLE_MS = 60 * 1000;          // no input for a minute: the rater is not working on this
  var RETRY_MS = 5000;              // failed saves are sent again this often
  var root = document.getElementById("rating-root");
  if (!root || !window.htmx) { return; }
  var editable = root.dataset.editable === "1";
  var saveUrl = root.dataset.saveUrl;

  // Validation errors (422) and conflicts (409) carry fragments to show; other errors do not.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "409", swap: true, error: false },
    { code: "422", swap: true, error: false },
    { code: "[45]..", swap: false, error: true }
  ];

  var statusEl = document.getElementById("save-status");
  function setStatus(text, isError) {
    if (!statusEl) { return; }
    statusEl.textContent = text;
    statusEl.classList.toggle("error-text", !!isError);
  }

  // --- axes and the "current" one ---------------------------------------------------------------
  var axes = Array.prototype.slice.call(document.querySelectorAll("fieldset.axis[data-axis]"));
  var current = 0;

  function radios(axis) { return Array.prototype.slice.call(axis.querySelectorAll("input[type=radio]")); }
  function checked(axis) { return axis.querySelector("input[type=radio]:checked"); }

  function setCurrent(i, focus) {
    if (!axes.length) { return; }
    current = Math.max(0, Math.min(axes.length - 1, i));
    axes.forEach(function (a, j) { a.classList.toggle("current", j === current); });
    if (focus) {
      var axis = axes[current];
      var target = checked(axis) || radios(axis)[0];
      if (target && !target.disabled) { target.focus(); } else { axis.setAttribute("tabindex", "-1"); axis.focus(); }
      axis.scrollIntoView({ block: "nearest" });
    }
  }

  axes.forEach(function (axis, i) {
    axis.addEventListener("focusin", function () { setCurrent(i, false); });
  });

  function pick(digit) {
    var axis = axes[current];
    if (!axis) { return; }
    // Nominal axes: the digit is the category's position (data-digit), not its value.
    var radio = axis.dataset.kind === "nominal"
      ? axis.querySelector('input[type=radio][data-digit="' + digit + '"]')
      : axis.querySelector('input[type=radio][value="' + digit + '"]');
    if (!radio || radio.disabled) { return; }
    if (!radio.checked) {
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));  // htmx saves on change
    }
    radio.focus();
  }

  // Clearing: uncheck here (capture phase), before htmx sends the button's request with an empty value.
  document.addEventListener("click", function (e) {
    var btn = e.target.closest && e.target.closest("[data-clear-axis]");
    if (!btn) { return; }
    var axis = btn.closest("fieldset.axis");
    radios(axis).forEach(function (r) { r.checked = false; });
    var first = radios(axis)[0];
    if (first) { setTimeout(function () { first.focus(); }, 0); }
  }, true);

  function clearCurrent() {
    var axis = axes[current];
    var btn = axis && axis.querySelector("[data-clear-axis]");
    if (btn) { btn.click(); }
  }

  // --- stage labels ------------------------------------------------------------------------------
  var transcript = document.getElementById("transcript");
  var stageToggle = document.getElementById("toggle-stages");
  function applyStages() {
    if (transcript && stageToggle) { transcript.classList.toggle("hide-stages", !stageToggle.checked); }
  }
  if (stageToggle) {
    try { stageToggle.checked = localStorage.getItem("rating.hideStages") !== "1"; } catch (err) { /* private mode */ }
    stageToggle.addEventListener("change", function () {
      try { localStorage.setItem("rating.hideStages", stageToggle.checked ? "0" : "1"); } catch (err) { /* ignore */ }
      applyStages();
    });
    applyStages();
  }

  // --- shortcuts dialog -----------------------------------------------------------------------------
  var dialog = document.getElementById("shortcuts");
  var returnFocus = null;
  function toggleDialog() {
    if (!dialog) { return; }
    if (dialog.open) { dialog.close(); return; }
    returnFocus = document.activeElement;
    dialog.showModal();
  }
  if (dialog) {
    dialog.addEventListener("close", function () { if (returnFocus) { returnFocus.focus(); } });
  }
  document.querySelectorAll("[data-shortcuts-open]").forEach(function (b) { b.addEventListener("click", toggleDialog); });

  // --- keyboard ------------------------------------------------------------------------------------
  function isTyping(el) {
    if (!el) { return false; }
    if (el.isContentEditable) { return true; }
    var tag = el.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") { return true; }
    if (tag === "INPUT") {
      var type = (el.getAttribute("type") || "text").toLowerCase();
      return ["radio", "checkbox", "button", "submit", "reset"].indexOf(type) === -1;
    }
    return false;
  }

  // For page-specific scripts built on this one (validate.js): the typing test and the current axis.
  window.MHSDRating = { isTyping: isTyping, currentAxis: function () { return axes[current]; } };

  function submitForm() {
    var form = document.getElementById("rating-form");
    var button = form && form.querySelector("[data-submit]");
    if (form && button) { form.requestSubmit(button); }
  }

  function openFlag() {
    var panel = document.getElementById("flag-panel");
    if (!panel) { return; }
    panel.open = true;
    var select = panel.querySelector("select");
    if (select) { select.focus(); }
  }

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented) { return; }
    var el = document.activeElement;
    if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
      if (editable) { e.preventDefault(); submitForm(); }
      return;
    }
    if (isTyping(el)) {
      if (e.key === "Escape" && el.closest && el.closest("#rating-root")) {
        e.preventDefault();
        el.blur();
        setCurrent(current, true);
      }
      return;  // typing never triggers shortcuts
    }
    if (dialog && dialog.open) {
      if (e.key === "?") { e.preventDefault(); dialog.close(); }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var inAxis = el && el.closest && el.closest("fieldset.axis");
    if (e.key === "Enter" && el && el.form && el.form.id === "rating-form" && el.tagName === "INPUT") {
      e.preventDefault();  // Enter on a score would submit the form by accident; Ctrl+Enter submits
      return;
    }
    switch (e.key) {
      case "?": e.preventDefault(); toggleDialog(); return;
      case "j": e.preventDefault(); setCurrent(current + 1, true); return;
      case "k": e.preventDefault(); setCurrent(current - 1, true); return;
      case "ArrowDown":
        if (inAxis) { e.preventDefault(); setCurrent(current + 1, true); }
        return;
      case "ArrowUp":
        if (inAxis) { e.preventDefault(); setCurrent(current - 1, true); }
        return;
      case "Backspace": case "Delete":
        if (inAxis && editable) { e.preventDefault(); clearCurrent(); }
        return;
      case "c": {
        var comment = axes[current] && axes[current].querySelector("textarea");
        if (comment) { e.preventDefault(); comment.focus(); }
        return;
      }
      case "o": {
        var overall = document.getElementById("f-overall_comment");
        if (overall) { e.preventDefault(); overall.focus(); }
        return;
      }
      case "t":
        if (stageToggle) { e.preventDefault(); stageToggle.checked = !stageToggle.checked; stageToggle.dispatchEvent(new Event("change")); }
        return;
      case "f": e.preventDefault(); openFlag(); return;
      default:
        if (/^[0-9]$/.test(e.key) && editable) { e.preventDefault(); pick(e.key); }
    }
  });

  // --- save status, dirty text fields and retries ---------------------------------------------------
  var dirty = new Set();     // text fields typed into but not yet confirmed saved
  var failed = new Set();    // fields whose save did not reach the server
  var inFlight = 0;

  function isSave(elt) { return elt && elt.getAttribute && elt.getAttribute("hx-post") === saveUrl; }

  document.addEventListener("input", function (e) {
    if (isTyping(e.target) && isSave(e.target)) { dirty.add(e.target); }
  });
  document.body.addEventListener("htmx:beforeRequest", function (e) {
    if (isSave(e.detail.elt)) { inFlight += 1; setStatus("Saving…"); }
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    var elt = e.detail.elt;
    if (!isSave(elt)) { return; }
    inFlight = Math.max(0, inFlight - 1);
    var status = e.detail.xhr ? e.detail.xhr.status : 0;
    if (status >= 200 && status < 300) {
      dirty.delete(elt);
      failed.delete(elt);
    } else if (status === 0 || status >= 500) {
      failed.add(elt);
      setStatus("Not saved: connection problem. Retrying…", true);
    } else {
      dirty.delete(elt);  // 409/422: the server answered with the reason, shown in place
    }
  });
  setInterval(function () {
    failed.forEach(function (elt) {
      failed.delete(elt);
      htmx.trigger(elt, elt.tagName === "BUTTON" ? "click" : "change");
    });
  }, RETRY_MS);

  // A closing tab sends what the debounce has not sent yet, and the last active seconds. The final beat
  // only records time (final=1): a closed page must not keep its conversation.
  function csrfToken() {
    var input = document.querySelector("#rating-form input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }
  window.addEventListener("pagehide", function () {
    if (!editable || !navigator.sendBeacon) { return; }
    dirty.forEach(function (elt) {
      var data = new FormData();
      data.append("csrfmiddlewaretoken", csrfToken());
      data.append(elt.name, elt.value);
      navigator.sendBeacon(saveUrl, data);
    });
    var hb = document.getElementById("heartbeat");
    if (hb && pending > 0) {
      var beat = new FormData();
      beat.append("csrfmiddlewaretoken", csrfToken());
      beat.append("active_seconds", String(pending));
      beat.append("final", "1");
      navigator.sendBeacon(hb.getAttribute("hx-post"), beat);
      pending = 0;
    }
  });
  // Leaving while a save is unconfirmed asks first; submitting the form is fine (it carries every field).
  var submitting = false;
  var ratingForm = document.getElementById("rating-form");
  if (ratingForm) { ratingForm.addEventListener("submit", function () { submitting = true; }); }
  window.addEventListener("beforeunload", function (e) {
    if (!submitting && (inFlight > 0 || failed.size > 0)) { e.preventDefault(); e.returnValue = ""; }
  });

  // --- active time: counted here, credited (and capped) by the server on each heartbeat -----------
  // A second counts only while the tab is visible and there was input in the last IDLE_MS. The server
  // keeps the lease for the lease length after the last beat that reported active time, so a tab left
  // open (hidden or idle) lets its conversation go.
  var pending = 0;
  var sent = 0;
  var lastInput = Date.now();
  ["keydown", "mousedown", "mousemove", "wheel", "scroll", "touchstart", "focusin"].forEach(function (name) {
    window.addEventListener(name, function () { lastInput = Date.now(); }, { passive: true, capture: true });
  });
  setInterval(function () {
    if (document.visibilityState === "visible" && Date.now() - lastInput < IDLE_MS) { pending += 1; }
  }, 1000);
  document.body.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.elt && e.detail.elt.id === "heartbeat") {
      sent = pending;
      e.detail.parameters.active_seconds = String(sent);
    }
  });
  document.body.addEventListener("htmx:afterRequest", function (e) {
    if (e.detail.elt && e.detail.elt.id === "heartbeat" && e.detail.successful) {
      pending = Math.max(0, pending - sent);
      sent = 0;
    }
  });

  // --- start: errors first, else the first axis without a score --------------------------------------
  var summary = document.getElementById("error-summary");
  var firstError = axes.findIndex(function (a) { return a.classList.contains("has-error"); });
  if (summary) {
    // The error list gets the focus (screen readers read it); digits already score the first axis in error.
    setCurrent(firstError === -1 ? 0 : firstError, false);
    summary.focus();
  } else if (axes.length && editable) {
    var firstEmpty = axes.findIndex(function (a) { return !checked(a); });
    setCurrent(firstEmpty === -1 ? 0 : firstEmpty, true);
  } else {
    setCurrent(0, false);
  }
})();
