/*
 * django-smsfly: the admin's campaign pages.
 *
 * - A form marked data-smsfly-once is submitted once: its buttons are disabled as it
 *   goes (a double click sends one POST). The server starts a campaign once anyway;
 *   this spares the operator a second page.
 * - A form with data-smsfly-confirm asks first (Cancel, Discard).
 * - The progress page (#smsfly-progress) asks its JSON URL every two seconds until the
 *   campaign is final, and puts each figure, already formatted by the server in the
 *   page's language, into the element whose data-smsfly-field names it. The progress
 *   bar, the status badge, the buttons the status allows and the top error codes follow.
 *
 * No library; no inline script or style is needed (the admin may run under a CSP).
 */
(function () {
  "use strict";

  var POLL_MS = 2000;
  var RETRY_MS = 5000;
  var BADGE_PREFIX = "smsfly-badge-";

  /* -- forms -------------------------------------------------------------------- */

  function keepSubmitter(form, submitter) {
    // A disabled button is not part of the form's data: carry its name in a hidden
    // field so the server still sees which button was pressed.
    if (!submitter || !submitter.name) {
      return;
    }
    var carried = document.createElement("input");
    carried.type = "hidden";
    carried.name = submitter.name;
    carried.value = submitter.value || "1";
    form.appendChild(carried);
  }

  function setButtons(form, disabled) {
    form.querySelectorAll("button, input[type=submit]").forEach(function (button) {
      button.disabled = disabled;
    });
  }

  function onSubmit(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) {
      return;
    }
    var question = form.getAttribute("data-smsfly-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      return;
    }
    if (!form.hasAttribute("data-smsfly-once")) {
      return;
    }
    if (form.getAttribute("data-smsfly-submitted") === "true") {
      event.preventDefault();
      return;
    }
    form.setAttribute("data-smsfly-submitted", "true");
    keepSubmitter(form, event.submitter);
    setButtons(form, true);
  }

  function onPageShow(event) {
    // Back to a page from the browser's cache: its forms may be used again.
    if (!event.persisted) {
      return;
    }
    document.querySelectorAll("form[data-smsfly-submitted]").forEach(function (form) {
      form.removeAttribute("data-smsfly-submitted");
      setButtons(form, false);
    });
  }

  /* -- progress ------------------------------------------------------------------ */

  function showFigures(root, display) {
    root.querySelectorAll("[data-smsfly-field]").forEach(function (element) {
      var name = element.getAttribute("data-smsfly-field");
      if (Object.prototype.hasOwnProperty.call(display, name)) {
        element.textContent = display[name];
      }
    });
  }

  function showBadge(root, kind) {
    var badge = root.querySelector("#smsfly-campaign-status");
    if (!badge) {
      return;
    }
    Array.from(badge.classList).forEach(function (name) {
      if (name.indexOf(BADGE_PREFIX) === 0) {
        badge.classList.remove(name);
      }
    });
    badge.classList.add(BADGE_PREFIX + kind);
  }

  function showActions(root, actions) {
    root.querySelectorAll("form[data-smsfly-action]").forEach(function (form) {
      var hidden = actions.indexOf(form.getAttribute("data-smsfly-action")) === -1;
      if (form.hidden === hidden) {
        return;  // unchanged (and a POST in flight stays guarded)
      }
      form.hidden = hidden;
      // Shown again (pause, then resume elsewhere): its button may be pressed again.
      form.removeAttribute("data-smsfly-submitted");
      setButtons(form, false);
    });
  }

  function showErrors(root, errors) {
    var list = root.querySelector("#smsfly-top-errors");
    var none = root.querySelector("#smsfly-no-errors");
    if (!list) {
      return;
    }
    list.replaceChildren.apply(list, errors.map(function (error) {
      var item = document.createElement("li");
      var code = document.createElement("code");
      code.textContent = error.code;
      item.appendChild(code);
      item.appendChild(document.createTextNode(": " + error.display));
      return item;
    }));
    if (none) {
      none.hidden = errors.length > 0;
    }
  }

  function show(root, payload) {
    showFigures(root, payload.display);
    showBadge(root, payload.badge);
    var bar = root.querySelector("#smsfly-progress-bar");
    if (bar) {
      bar.value = payload.progress.percent;
      bar.textContent = payload.display.percent;
    }
    showActions(root, payload.actions);
    showErrors(root, payload.top_errors);
    root.setAttribute("data-smsfly-status", payload.status);
    root.setAttribute("data-smsfly-final", payload.final ? "true" : "false");
  }

  function poll(root, url) {
    fetch(url, {
      credentials: "same-origin",
      cache: "no-store",
      headers: {"Accept": "application/json"}
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("HTTP " + response.status);
      }
      return response.json();
    }).then(function (payload) {
      show(root, payload);
      if (!payload.final) {
        window.setTimeout(poll, POLL_MS, root, url);
      }
    }).catch(function () {
      // A network blip or a restart: keep trying, a little less often.
      window.setTimeout(poll, RETRY_MS, root, url);
    });
  }

  function startPolling() {
    var root = document.getElementById("smsfly-progress");
    if (!root || root.getAttribute("data-smsfly-final") === "true") {
      return;
    }
    var url = root.getAttribute("data-smsfly-progress-url");
    window.setTimeout(poll, POLL_MS, root, url);
  }

  document.addEventListener("submit", onSubmit);
  window.addEventListener("pageshow", onPageShow);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", startPolling);
  } else {
    startPolling();
  }
})();
