/*
 * django-smsfly: a message's page follows the message until it is final.
 *
 * The page's story (#smsfly-story: its status in words, why, what it cost, its channels
 * and delivery timeline) carries the address of the message's status endpoint. Every
 * few seconds this asks it, puts the new story and title in place, and stops once the
 * message is final (delivered, not delivered, refused, or its outcome unknown). It also
 * pauses while the tab is hidden, and gives up quietly after repeated errors (the page
 * then is as it was drawn; a reload shows the latest).
 *
 * No library and no inline script: the page works under a strict CSP.
 */
(function () {
  "use strict";

  var MAX_ERRORS = 5;

  function follow(story) {
    var url = story.getAttribute("data-smsfly-status-url");
    var interval = parseInt(story.getAttribute("data-smsfly-interval"), 10) || 3000;
    var errors = 0;
    var timer = null;
    var asking = false;

    function schedule() {
      timer = window.setTimeout(ask, interval);
    }

    function show(data) {
      var fragment = document.createElement("div");
      // The endpoint's HTML is the server's own template, escaped as the page is.
      fragment.innerHTML = data.html;
      story.replaceChildren.apply(story, Array.prototype.slice.call(fragment.childNodes));
      story.setAttribute("data-smsfly-final", data.final ? "1" : "0");
      var title = document.getElementById("smsfly-subtitle");
      if (title && data.title) {
        title.textContent = data.title;
      }
    }

    function ask() {
      timer = null;
      if (document.hidden) {
        return;  // asked again when the tab is shown
      }
      asking = true;
      fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (data) {
          asking = false;
          errors = 0;
          show(data);
          if (!data.final) {
            schedule();
          }
        })
        .catch(function () {
          asking = false;
          errors += 1;
          if (errors < MAX_ERRORS) {
            schedule();
          }
        });
    }

    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && timer === null && !asking && story.getAttribute("data-smsfly-final") !== "1"
          && errors < MAX_ERRORS) {
        ask();
      }
    });
    schedule();
  }

  function init() {
    var story = document.getElementById("smsfly-story");
    if (story && story.getAttribute("data-smsfly-final") !== "1") {
      follow(story);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
