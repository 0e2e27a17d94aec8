// One chat line of the live session (a server `chat` message, docs/protocol.md), as the
// customer's page and the staff viewer both show it. Text only: never HTML from a message.
(function (root) {
  "use strict";

  function line(message, who) {
    const item = document.createElement("li");
    item.className = "chat-line from-" + (message.from === "customer" ? "customer" : "staff");
    const name = document.createElement("span");
    name.className = "chat-who";
    name.textContent = who;
    const when = document.createElement("time");
    when.className = "chat-when";
    const at = new Date(message.at);
    if (!isNaN(at)) {
      when.dateTime = message.at;
      when.textContent = at.toLocaleTimeString(document.documentElement.lang || undefined,
                                               { hour: "2-digit", minute: "2-digit" });
    }
    const body = document.createElement("span");
    body.className = "chat-text";
    body.textContent = message.text;
    item.append(name, " ", when, " ", body);
    return item;
  }

  root.FernwartungChat = { line: line };
})(typeof self !== "undefined" ? self : this);
