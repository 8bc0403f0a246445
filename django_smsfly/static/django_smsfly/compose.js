/*
 * django-smsfly: the admin's compose page.
 *
 * - A live counter under the SMS text: characters (as a person sees them), SMS parts,
 *   encoding (GSM-7 or UCS-2) and what is left in the current part (in its units). The alphabets and limits are read
 *   from the page (the "smsfly-segment-rules" JSON the server writes from
 *   django_smsfly/segments.py); the counting below mirrors count_segments() there.
 * - A character counter under the Viber text.
 * - Only the fieldsets of the chosen channels are shown.
 * - The form is submitted once: its buttons are disabled on submit (and enabled
 *   again when the browser brings the page back from its back-forward cache). The
 *   server sends once per drawn form in any case (its one-time token); this spares
 *   the operator a second round trip and a "was already sent" page.
 *
 * No library and no request: everything happens in the page.
 */
(function () {
  "use strict";

  /* Count the SMS parts of `text` by the rules of segments.py. */
  function countSegments(text, rules) {
    var gsm = new Set(Array.from(rules.gsm7));
    var extension = new Set(Array.from(rules.extension));
    // Iterate by code point, as Python iterates a str.
    var chars = Array.from(text);
    var isGsm = chars.every(function (c) { return gsm.has(c) || extension.has(c); });
    var encoding = isGsm ? rules.encodings.gsm7 : rules.encodings.ucs2;
    var single = rules.limits[encoding][0];
    var multi = rules.limits[encoding][1];
    var widths = chars.map(function (c) {
      if (isGsm) {
        return extension.has(c) ? 2 : 1;  // an extension character takes an escape too
      }
      return c.codePointAt(0) > 0xFFFF ? 2 : 1;  // a surrogate pair in UCS-2
    });
    var length = widths.reduce(function (a, b) { return a + b; }, 0);
    if (length === 0) {
      return {encoding: encoding, length: 0, parts: 0, perPart: single, remaining: single};
    }
    if (length <= single) {
      return {encoding: encoding, length: length, parts: 1, perPart: single,
              remaining: single - length};
    }
    var parts = 1;
    var used = 0;
    widths.forEach(function (width) {
      if (used + width > multi) {  // this character starts the next part
        parts += 1;
        used = 0;
      }
      used += width;
    });
    return {encoding: encoding, length: length, parts: parts, perPart: multi,
            remaining: multi - used};
  }

  /* Characters as a person sees them: "Hello 😀" is 7, an accented letter written as
   * a letter and a combining mark is 1. (The parts above count encoding units, as the
   * bill does: an emoji takes two places in UCS-2.) */
  var segmenter = (typeof Intl !== "undefined" && Intl.Segmenter)
    ? new Intl.Segmenter(undefined, {granularity: "grapheme"}) : null;

  function countCharacters(text) {
    if (segmenter) {
      var count = 0;
      for (var it = segmenter.segment(text)[Symbol.iterator](), step = it.next(); !step.done;
           step = it.next()) {
        count += 1;
      }
      return count;
    }
    return Array.from(text).length;  // no Intl.Segmenter: code points, near enough
  }

  function describeSms(counted, characters, labels) {
    return [
      labels.length + ": " + characters,
      labels.parts + ": " + counted.parts,
      labels.encoding + ": " + counted.encoding,
      labels.remaining + ": " + counted.remaining
    ].join(" · ");
  }

  function wireCounters(rules, maxParts) {
    var areas = document.querySelectorAll("textarea[data-smsfly-counter]");
    Array.prototype.forEach.call(areas, function (area) {
      var out = document.getElementById(area.id + "_counter");
      if (!out) {
        return;
      }
      var kind = area.getAttribute("data-smsfly-counter");
      var update = function () {
        // Line breaks are sent as one character (the form stores "\n").
        var text = area.value.replace(/\r\n/g, "\n");
        if (kind === "sms") {
          var counted = countSegments(text, rules);
          out.textContent = describeSms(counted, countCharacters(text), rules.labels);
          out.setAttribute("data-characters", String(countCharacters(text)));
          out.setAttribute("data-parts", String(counted.parts));
          out.setAttribute("data-encoding", counted.encoding);
          out.classList.toggle("smsfly-counter-multi", counted.parts > 1);
          // More parts than SMSFLY["MAX_SMS_PARTS"]: the server will refuse it.
          out.classList.toggle("smsfly-counter-over", maxParts > 0 && counted.parts > maxParts);
        } else {
          // The limit is SMS-fly's, in code points (as the form checks it).
          var length = Array.from(text).length;
          out.setAttribute("data-characters", String(countCharacters(text)));
          out.textContent = rules.labels.length + ": " + length + " / " + rules.viberMax;
          out.classList.toggle("smsfly-counter-over", length > rules.viberMax);
        }
      };
      area.addEventListener("input", update);
      update();
    });
  }

  function wireChannels() {
    var radios = document.querySelectorAll('input[name="channels"]');
    if (!radios.length) {
      return;
    }
    var toggle = function () {
      var checked = document.querySelector('input[name="channels"]:checked');
      var used = checked ? checked.value.split(",") : ["sms", "viber"];
      ["sms", "viber"].forEach(function (channel) {
        var sets = document.querySelectorAll("fieldset.smsfly-channel-" + channel);
        Array.prototype.forEach.call(sets, function (fieldset) {
          fieldset.hidden = used.indexOf(channel) === -1;
        });
      });
    };
    Array.prototype.forEach.call(radios, function (radio) {
      radio.addEventListener("change", toggle);
    });
    toggle();
  }

  /* An estimate is for the message as it was; once the form changes it is hidden. */
  function wireEstimate() {
    var estimate = document.getElementById("smsfly-estimate");
    var form = document.getElementById("smsfly-compose-form");
    if (!estimate || !form) {
      return;
    }
    var hide = function () { estimate.hidden = true; };
    form.addEventListener("input", hide);
    form.addEventListener("change", hide);
  }

  /* One submit per page view: the buttons are disabled as the form goes. */
  function wireSubmitOnce() {
    var form = document.getElementById("smsfly-compose-form");
    if (!form) {
      return;
    }
    var buttons = form.querySelectorAll("input[type=submit], button[type=submit]");
    var carrier = null;
    var setDisabled = function (disabled) {
      Array.prototype.forEach.call(buttons, function (button) {
        button.disabled = disabled;
      });
    };
    form.addEventListener("submit", function (event) {
      if (form.getAttribute("data-smsfly-submitting") === "1") {
        event.preventDefault();  // a second click while the first is on its way
        return;
      }
      form.setAttribute("data-smsfly-submitting", "1");
      // A disabled button is left out of the POST: carry the clicked one's name
      // (Send or Estimate cost) in a hidden field instead.
      var submitter = event.submitter;
      if (submitter && submitter.name) {
        carrier = document.createElement("input");
        carrier.type = "hidden";
        carrier.name = submitter.name;
        carrier.value = submitter.value;
        form.appendChild(carrier);
      }
      setDisabled(true);
    });
    // Back to this page from the browser's back-forward cache: usable again. (A second
    // send of the same form then shows the message the first one made.)
    window.addEventListener("pageshow", function (event) {
      if (!event.persisted) {
        return;
      }
      form.removeAttribute("data-smsfly-submitting");
      if (carrier && carrier.parentNode) {
        carrier.parentNode.removeChild(carrier);
      }
      carrier = null;
      setDisabled(false);
    });
  }

  function init() {
    var rulesElement = document.getElementById("smsfly-segment-rules");
    if (!rulesElement) {
      return;
    }
    var form = document.getElementById("smsfly-compose-form");
    var maxParts = form ? parseInt(form.getAttribute("data-smsfly-max-parts"), 10) || 0 : 0;
    wireCounters(JSON.parse(rulesElement.textContent), maxParts);
    wireChannels();
    wireEstimate();
    wireSubmitOnce();
  }

  // For tests of the counting rules outside a browser.
  if (typeof globalThis !== "undefined") {
    globalThis.djangoSmsflyCountSegments = countSegments;
  }
  if (typeof document !== "undefined") {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", init);
    } else {
      init();
    }
  }
})();
