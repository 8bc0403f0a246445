/*
 * django-smsfly: the live preview on a message template's admin page.
 *
 * As the operator types (a pause of DEBOUNCE_MS), the whole form is posted to the
 * preview URL (the panel's data-preview-url; the form carries the CSRF token). The
 * server renders the texts with the same code as a send and answers with JSON: the
 * variables the texts use, the rendered SMS and Viber texts, the SMS counter
 * (characters, parts, encoding, left in the part) and the errors. This script only
 * draws that answer: one sample input per variable (named "sample-<name>", prefilled
 * with the name), the texts, the counter and the errors.
 *
 * The panel's data-state is "loading" while a request is out and "ready" once its
 * answer is drawn. Only the newest answer is drawn, so a slow one never overwrites it.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 250;
  var TEXT_FIELDS = ["name", "sms_text", "viber_text", "button_caption", "button_url", "image"];

  function fill(container, values) {
    Object.keys(values).forEach(function (key) {
      var target = container.querySelector('[data-field="' + key + '"]');
      if (target) {
        target.textContent = String(values[key]);
      }
    });
  }

  /* Keep one input per variable, in the server's order; keep what was typed. A row
   * already in its place is left there: moving a node takes the focus from the input
   * in it, and the operator typing there would lose the caret at every answer. */
  function drawSamples(panel, names) {
    var box = panel.querySelector("#smsfly-preview-samples");
    var existing = {};
    Array.prototype.forEach.call(box.querySelectorAll("input"), function (input) {
      var row = input.closest(".smsfly-preview-sample");
      if (names.indexOf(input.getAttribute("data-variable")) === -1) {
        row.remove();  // a variable the texts no longer use
      } else {
        existing[input.getAttribute("data-variable")] = row;
      }
    });
    var added = false;
    names.forEach(function (name, index) {
      var row = existing[name];
      if (!row) {
        row = document.createElement("div");
        row.className = "smsfly-preview-sample";
        var label = document.createElement("label");
        var input = document.createElement("input");
        input.type = "text";
        input.id = "smsfly-sample-" + name;
        input.name = "sample-" + name;
        input.value = name;
        input.setAttribute("data-variable", name);
        input.setAttribute("autocomplete", "off");
        label.htmlFor = input.id;
        label.textContent = "{{ " + name + " }}";
        row.appendChild(label);
        row.appendChild(input);
        added = true;
      }
      var here = box.children[index] || null;
      if (here !== row) {
        box.insertBefore(row, here);
      }
    });
    panel.querySelector("#smsfly-preview-no-samples").hidden = names.length > 0;
    return added;
  }

  function drawErrors(panel, errors) {
    var list = panel.querySelector("#smsfly-preview-errors");
    list.textContent = "";
    Object.keys(errors).forEach(function (field) {
      errors[field].forEach(function (message) {
        var item = document.createElement("li");
        item.textContent = message;
        item.setAttribute("data-field", field);
        list.appendChild(item);
      });
    });
    list.hidden = !list.children.length;
  }

  function drawSms(panel, sms) {
    var block = panel.querySelector("#smsfly-preview-sms");
    block.hidden = !sms;
    if (!sms) {
      return;
    }
    block.querySelector("#smsfly-preview-sms-text").textContent = sms.text;
    var counter = block.querySelector("#smsfly-preview-sms-counter");
    fill(counter, {length: sms.length, parts: sms.parts, encoding: sms.encoding,
                   remaining: sms.remaining});
    counter.setAttribute("data-parts", String(sms.parts));
    counter.setAttribute("data-encoding", sms.encoding);
    counter.classList.toggle("smsfly-counter-multi", sms.parts > 1);
    counter.classList.toggle("smsfly-counter-over", sms.parts > sms.max_parts);
  }

  function drawViber(panel, viber) {
    var block = panel.querySelector("#smsfly-preview-viber");
    block.hidden = !viber;
    if (!viber) {
      return;
    }
    block.querySelector("#smsfly-preview-viber-text").textContent = viber.text;
    var button = block.querySelector("#smsfly-preview-viber-button");
    fill(button, {button_caption: viber.button_caption});
    button.hidden = !viber.button_caption;
    var counter = block.querySelector("#smsfly-preview-viber-counter");
    fill(counter, {length: viber.length, max: viber.max});
    counter.classList.toggle("smsfly-counter-over", viber.length > viber.max);
  }

  function wire(panel, form) {
    var url = panel.getAttribute("data-preview-url");
    var timer = null;
    var latest = 0;

    function request() {
      var sequence = ++latest;
      panel.setAttribute("data-state", "loading");
      fetch(url, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: {"X-Requested-With": "XMLHttpRequest"}
      }).then(function (response) {
        if (!response.ok) {
          throw new Error(response.status + " " + response.statusText);
        }
        return response.json();
      }).then(function (data) {
        if (sequence !== latest) {
          return;  // a newer request is out; its answer will be drawn
        }
        var added = drawSamples(panel, data.variables);
        drawErrors(panel, data.errors);
        drawSms(panel, data.sms);
        drawViber(panel, data.viber);
        if (added) {
          request();  // the new inputs' values are part of the next answer
          return;
        }
        panel.setAttribute("data-state", "ready");
      }).catch(function (error) {
        if (sequence === latest) {
          drawErrors(panel, {"": [String(error.message || error)]});
          panel.setAttribute("data-state", "error");
        }
      });
    }

    function schedule() {
      window.clearTimeout(timer);
      timer = window.setTimeout(request, DEBOUNCE_MS);
    }

    form.addEventListener("input", function (event) {
      var name = event.target.name || "";
      if (TEXT_FIELDS.indexOf(name) !== -1 || name.indexOf("sample-") === 0) {
        schedule();
      }
    });
    form.addEventListener("change", function (event) {
      if (event.target.name === "channels") {
        schedule();
      }
    });
    request();
  }

  function init() {
    var panel = document.getElementById("smsfly-template-preview");
    var form = panel && panel.closest("form");
    if (panel && form && window.fetch) {
      wire(panel, form);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
