/*
 * django-smsfly: the admin's compose page.
 *
 * - A live counter under the SMS text: characters, SMS parts, encoding (GSM-7 or
 *   UCS-2) and what is left in the current part. The alphabets and limits are read
 *   from the page (the "smsfly-segment-rules" JSON the server writes from
 *   django_smsfly/segments.py); the counting below mirrors count_segments() there.
 * - A character counter under the Viber text.
 * - Only the fieldsets of the chosen channels are shown.
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

  function describeSms(counted, labels) {
    return [
      labels.length + ": " + counted.length,
      labels.parts + ": " + counted.parts,
      labels.encoding + ": " + counted.encoding,
      labels.remaining + ": " + counted.remaining
    ].join(" · ");
  }

  function wireCounters(rules) {
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
          out.textContent = describeSms(counted, rules.labels);
          out.setAttribute("data-parts", String(counted.parts));
          out.setAttribute("data-encoding", counted.encoding);
          out.classList.toggle("smsfly-counter-multi", counted.parts > 1);
        } else {
          var length = Array.from(text).length;
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

  function init() {
    var rulesElement = document.getElementById("smsfly-segment-rules");
    if (!rulesElement) {
      return;
    }
    wireCounters(JSON.parse(rulesElement.textContent));
    wireChannels();
    wireEstimate();
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
