// The V2 host stand-in page: frames the CTI widget and does with its payloads what V2 does.
//
// V2 listens for `message` events from the CTI iframe, accepts `{"payload":{...}}` objects (or
// the same as a JSON string, or the XML form `<payload><Type>CALL</Type>...</payload>`), and on
// NOTIFY or ACCEPT searches its records by ANI and pops the match. This page does the same,
// reports every payload to the simulator (`POST /sim/host/payloads`, tagged with this page's
// id so tests can tell tabs apart), and shows what V2 would pop.
(function () {
  "use strict";

  var E164 = /^\+\d+$/;
  var POP_ACTIONS = { NOTIFY: true, ACCEPT: true };

  var state = {
    pageId: newPageId(),
    agent: null,
    // The telephony calls ring through: {name, tenant, calls} from the simulator's config.
    provider: null,
    relayOrigin: null,
    lastCallId: null,
    lookupSerial: 0,
  };

  function $(id) {
    return document.getElementById(id);
  }

  function newPageId() {
    var bytes = new Uint8Array(4);
    crypto.getRandomValues(bytes);
    return "page-" + Array.prototype.map.call(bytes, function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  function show(id, text) {
    var el = $(id);
    el.textContent = text || "";
    el.hidden = !text;
  }

  // The JSON error body of the simulator's routes, else the status line.
  async function failure(response) {
    var text = await response.text();
    try {
      var body = JSON.parse(text);
      if (body && body.error && body.error.message) {
        return body.error.message + " (" + response.status + " " + body.error.code + ")";
      }
    } catch (_) {
      // not JSON: fall through to the raw text
    }
    return response.status + " " + response.statusText + (text ? ": " + text.slice(0, 200) : "");
  }

  async function getJson(url) {
    var response = await fetch(url, { cache: "no-store" });
    if (!response.ok) {
      throw new Error(url + ": " + (await failure(response)));
    }
    return response.json();
  }

  async function postJson(url, body) {
    var response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!response.ok) {
      throw new Error(await failure(response));
    }
    return response.status === 204 ? null : response.json();
  }

  // ---- Receiving CTI payloads ------------------------------------------------------------

  function parseXml(text) {
    var doc = new DOMParser().parseFromString(text, "application/xml");
    if (doc.getElementsByTagName("parsererror").length > 0) {
      return null;
    }
    var root = doc.documentElement;
    if (!root || root.nodeName !== "payload") {
      return null;
    }
    var payload = {};
    for (var i = 0; i < root.children.length; i++) {
      var child = root.children[i];
      payload[child.nodeName] = child.textContent;
    }
    return payload;
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // Returns [payload, encoding], or null for messages that are not CTI payloads.
  function decode(data) {
    if (isObject(data)) {
      return isObject(data.payload) ? [data.payload, "object"] : null;
    }
    if (typeof data !== "string") {
      return null;
    }
    var text = data.trim();
    if (text.charAt(0) === "<") {
      var xml = parseXml(text);
      return xml ? [xml, "xml"] : null;
    }
    try {
      var parsed = JSON.parse(text);
      return isObject(parsed) && isObject(parsed.payload) ? [parsed.payload, "json-string"] : null;
    } catch (_) {
      return null;
    }
  }

  function onMessage(event) {
    // Stamped first: the moment V2 would pop, for `cargo xtask bench pop`.
    var receivedMs = Date.now();
    // V2 takes CTI payloads only from the configured provider's origin.
    if (!state.relayOrigin || event.origin !== state.relayOrigin) {
      return;
    }
    var decoded = decode(event.data);
    if (!decoded) {
      return;
    }
    receive(decoded[0], decoded[1], receivedMs);
  }

  function field(name, value) {
    var span = document.createElement("span");
    span.className = "field";
    span.dataset.field = name;
    var label = document.createElement("b");
    label.textContent = name + " ";
    span.appendChild(label);
    span.appendChild(document.createTextNode(value === undefined || value === null ? "-" : String(value)));
    return span;
  }

  function receive(payload, encoding, receivedMs) {
    var hasAni = Object.prototype.hasOwnProperty.call(payload, "ANI") && payload.ANI !== null;
    var aniOk = !hasAni || (typeof payload.ANI === "string" && E164.test(payload.ANI));

    var item = document.createElement("li");
    item.dataset.action = String(payload.Action || "");
    item.dataset.eventType = String(payload.EventType || "");
    item.dataset.externalReferenceId = String(payload.ExternalReferenceID || "");
    item.dataset.encoding = encoding;
    if (!aniOk) {
      item.classList.add("bad-ani");
    }
    item.appendChild(field("Action", payload.Action));
    item.appendChild(field("EventType", payload.EventType));
    item.appendChild(field("ANI", payload.ANI));
    item.appendChild(field("ExternalReferenceID", payload.ExternalReferenceID));
    if (payload.Custom_1) {
      item.appendChild(field("Custom_1", payload.Custom_1));
    }
    $("payload-log").appendChild(item);
    $("payload-empty").hidden = true;

    // The warning speaks about the latest payload that carried an ANI.
    if (!aniOk) {
      show(
        "ani-warning",
        "ANI " + JSON.stringify(payload.ANI) + " is not E.164 with a leading \"+\": " +
          "V2 would fail to identify the customer and show \"Unknown Customer\"."
      );
    } else if (hasAni) {
      show("ani-warning", "");
    }

    postJson("/sim/host/payloads", {
      page_id: state.pageId,
      payload: payload,
      encoding: encoding,
      page_received_ms: receivedMs,
    })
      .catch(function (err) {
        show("page-error", "Could not record the payload: " + err.message);
      });

    if (POP_ACTIONS[payload.Action]) {
      pop(hasAni ? payload.ANI : null, aniOk, payload.Custom_1);
    }
  }

  function setPop(stateName, text, recordId) {
    var el = $("pop-target");
    el.dataset.state = stateName;
    el.dataset.recordId = recordId || "";
    el.textContent = text;
  }

  function describeOwner(owner) {
    return owner.name + " (" + owner.kind + " " + owner.display_id + ")";
  }

  // Like a tenant whose customer identification uses call attached data (Custom_1 holding the
  // record's display id) before the ANI search.
  async function pop(ani, aniOk, cad) {
    var serial = ++state.lookupSerial;
    if (!ani || !aniOk) {
      setPop("unknown", "V2 would pop: Unknown Customer");
      return;
    }
    try {
      var result = await getJson("/sim/host/lookup?ani=" + encodeURIComponent(ani));
      if (serial !== state.lookupSerial) {
        return; // a newer payload already decided the pop
      }
      var owners = result.owners || [];
      var byCad = cad ? owners.filter(function (o) { return o.display_id === cad; }) : [];
      if (byCad.length === 1) {
        setPop("popped", "V2 would pop: " + describeOwner(byCad[0]), byCad[0].id);
      } else if (owners.length === 0) {
        setPop("unknown", "V2 would pop: Unknown Customer");
      } else if (owners.length === 1) {
        setPop("popped", "V2 would pop: " + describeOwner(owners[0]), owners[0].id);
      } else {
        setPop("several", owners.length + " records match: " + owners.map(describeOwner).join(", "));
      }
    } catch (err) {
      if (serial === state.lookupSerial) {
        setPop("error", "Lookup failed: " + err.message);
      }
    }
  }

  // ---- Placing calls -----------------------------------------------------------------------

  async function placeCall(number) {
    show("call-error", "");
    if (!number || !number.trim()) {
      show("call-error", "Enter the caller's number first.");
      return;
    }
    $("call-status").textContent = "Ringing…";
    try {
      var result = await postJson(state.provider.calls, { from: number.trim(), agent: state.agent });
      state.lastCallId = result.call_id;
      $("caller-hangup").disabled = false;
      $("call-status").textContent = "Call " + result.call_id + " is ringing.";
    } catch (err) {
      $("call-status").textContent = "";
      show("call-error", "The call could not be placed: " + err.message);
    }
  }

  async function callerHangup() {
    show("call-error", "");
    var id = state.lastCallId;
    if (!id) {
      return;
    }
    try {
      var result = await postJson(state.provider.calls + "/" + encodeURIComponent(id) + "/hangup");
      $("call-status").textContent = "Caller hung up call " + id + " (" + result.reason + ").";
      $("caller-hangup").disabled = true;
    } catch (err) {
      show("call-error", "Hang-up failed: " + err.message);
    }
  }

  function renderCallers(callers) {
    var list = $("ring-as-list");
    list.textContent = "";
    callers.forEach(function (caller) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "ring-as";
      button.dataset.number = caller.number;
      button.textContent = caller.label;
      button.title = caller.number;
      button.addEventListener("click", function () {
        placeCall(caller.number);
      });
      list.appendChild(button);
    });
    if (callers.length === 0) {
      list.textContent = "No sample callers.";
    }
    // Like a phone field on a V2 record page: clicking the number asks the CTI to dial it.
    var dial = $("dial-list");
    dial.textContent = "";
    callers.forEach(function (caller) {
      var link = document.createElement("a");
      link.href = "tel:" + caller.number.replace(/[^0-9+]/g, "");
      link.className = "dial-link";
      link.dataset.number = caller.number;
      link.textContent = caller.label + " · " + caller.number;
      link.addEventListener("click", function (event) {
        event.preventDefault();
        clickToDial(caller.number);
      });
      dial.appendChild(link);
    });
  }

  // V2 asks the CTI to dial by posting into its frame (click-to-dial on a phone field).
  function clickToDial(number) {
    var frame = $("cti-frame");
    if (!state.relayOrigin || !frame.contentWindow || !number.trim()) {
      return;
    }
    frame.contentWindow.postMessage({ Direction: "OUT", PhoneNumber: number.trim() }, state.relayOrigin);
  }

  // ---- Telephony ---------------------------------------------------------------------------

  // The provider named in the page's address, else the simulator's default (its first).
  function choose(providers, wanted) {
    var found = (providers || []).filter(function (p) { return p.name === wanted; })[0];
    if (wanted && !found) {
      show("page-error", "No provider " + wanted + " in this demo; ringing through " + providers[0].name + ".");
    }
    return found || providers[0];
  }

  // Switching providers signs the widget in to that provider's tenant: the page reloads with
  // the choice in its address, so a reload or a shared link keeps it.
  function renderProviders(providers, params) {
    var select = $("provider");
    select.textContent = "";
    providers.forEach(function (p) {
      var option = document.createElement("option");
      option.value = p.name;
      option.textContent = p.name;
      option.selected = p.name === state.provider.name;
      select.appendChild(option);
    });
    select.disabled = providers.length < 2;
    select.addEventListener("change", function () {
      params.set("provider", select.value);
      window.location.search = params.toString();
    });
  }

  // ---- Start-up ----------------------------------------------------------------------------

  async function start() {
    document.body.dataset.pageId = state.pageId;
    $("page-id").textContent = state.pageId;

    $("ring-form").addEventListener("submit", function (event) {
      event.preventDefault();
      placeCall($("caller-number").value);
    });
    $("caller-hangup").addEventListener("click", callerHangup);
    $("dial-form").addEventListener("submit", function (event) {
      event.preventDefault();
      clickToDial($("dial-number").value);
    });

    try {
      var config = await getJson("/sim/host/config.json");
      var params = new URLSearchParams(window.location.search);
      state.agent = params.get("agent") || config.agent;
      state.relayOrigin = new URL(config.relay_url).origin;
      state.provider = choose(config.providers, params.get("provider"));
      $("agent").textContent = state.agent;
      $("tenant").textContent = state.provider.tenant;
      renderProviders(config.providers, params);

      getJson("/sim/host/callers").then(renderCallers, function (err) {
        $("ring-as-list").textContent = "";
        $("dial-list").textContent = "";
        show("call-error", "Sample callers unavailable: " + err.message);
      });

      var issued = await getJson(
        "/sim/token?agent=" + encodeURIComponent(state.agent) +
        "&tenant=" + encodeURIComponent(state.provider.tenant)
      );
      // V2's logon language, when this page was opened with one, goes to the widget as V2 would
      // pass it (inferred: V2 documents no parameter; the widget also reads `lang`).
      var language = new URLSearchParams(location.search).get("sap-language");
      $("cti-frame").src = config.relay_url.replace(/\/+$/, "") + "/widget/#token=" + issued.token +
        (language ? "&sap-language=" + encodeURIComponent(language) : "");
      document.body.dataset.ready = "true";
    } catch (err) {
      show("page-error", "The CTI panel could not start: " + err.message);
    }
  }

  // Listening before the frame loads, so not even the widget's first payload is missed.
  window.addEventListener("message", onMessage);
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
