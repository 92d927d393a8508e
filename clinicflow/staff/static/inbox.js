// The inbox's only script: follow the server-sent events, reload the fragments that changed,
// and alert (notification + sound) on a new urgent hand-off. Every action is a plain form.
// Every URL starts with the page's base (<body data-base>: "" alone, "/c/<clinic>" when the
// runner serves several clinics), so one clinic's page never reaches another's.
(function () {
  "use strict";
  var base = document.body.dataset.base || "";
  var chat = document.body.dataset.chat || "";
  var seen = (window.inboxAlerts = []);
  var audio = null;

  function ding() {
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var osc = audio.createOscillator();
      var gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain);
      gain.connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.35);
      return true;
    } catch (e) {
      return false;
    }
  }

  function alertUrgent(event) {
    var shown = false;
    if ("Notification" in window && Notification.permission === "granted") {
      try {
        new Notification("URGENTE: paciente aguardando", {
          body: event.name || "Nova passagem urgente para a recepção",
          tag: "urgent-" + event.chat,
        });
        shown = true;
      } catch (e) {
        shown = false;
      }
    }
    seen.push({ chat: event.chat, notification: shown, sound: ding() });
    document.title = "🚨 " + document.title.replace(/^🚨 /, "");
  }

  function reload(id, url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (response.status === 401) {
          window.location.assign(base + "/login");
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        var target = document.getElementById(id);
        if (html !== null && target) {
          target.innerHTML = html;
        }
      })
      .catch(function () {});
  }

  function refresh(event) {
    var open = chat ? "?open=" + encodeURIComponent(chat) : "";
    reload("queue", base + "/inbox/queue" + open);
    if (chat && (!event || event.chat === chat || event.type === "reload")) {
      reload("live", base + "/inbox/c/" + encodeURIComponent(chat) + "/live");
    }
  }

  var button = document.getElementById("alerts");
  if (button) {
    if ("Notification" in window && Notification.permission === "granted") {
      button.textContent = "Alertas ativos";
    }
    button.addEventListener("click", function () {
      ding();
      if ("Notification" in window) {
        Notification.requestPermission().then(function (answer) {
          button.textContent = answer === "granted" ? "Alertas ativos" : "Alertas bloqueados";
        });
      }
    });
  }

  var source = new EventSource(base + "/inbox/events");
  source.addEventListener("desk", function (message) {
    var event = JSON.parse(message.data);
    refresh(event);
    if (event.type === "handoff" && event.urgent) {
      alertUrgent(event);
    }
  });
  source.addEventListener("open", function () {
    document.body.dataset.live = "1";
  });
  source.addEventListener("hello", function () {
    document.body.dataset.live = "1";
  });
})();
