/* Phonewagon dynamic number insertion (docs/dni.md): records the visit, then shows the visitor's
 * tracking number wherever the business number appears. Whatever fails, the page stays as it is. */
(function () {
  "use strict";
  const NAME = "phonewagon_visitor";
  const ID = /^[A-Za-z0-9_-]{22,64}$/;
  const E164 = /^\+[1-9]\d{6,14}$/;
  const SKIP = "script,style,textarea,input,noscript,template";
  const SEP = "[\\s().\\u2010-\\u2015-]{0,3}"; // between two digits: ") " in "(503) 555-0100"
  // Every way in from the browser goes through guard: no exception ever reaches the page.
  const noop = () => {};
  const guard = (fn) => function () {
    try { return fn.apply(this, arguments); } catch (e) { return undefined; }
  };
  let key, origin, visitor, visit, observer, timer, stopped = false, period = 60000;
  const numbers = {}; // target: the number shown in its place
  let rules = []; // what the observer applies to new content

  function loadVisitor() {
    let id = null;
    try { id = localStorage.getItem(NAME); } catch (e) { /* storage disabled */ }
    try {
      if (!ID.test(id)) id = (document.cookie.match(/(?:^|; *)phonewagon_visitor=([\w-]+)/) || [])[1];
    } catch (e) { /* cookies disabled */ }
    return ID.test(id) ? id : null;
  }

  function keepVisitor(id) {
    if (!ID.test(id)) return;
    visitor = id;
    try { localStorage.setItem(NAME, id); } catch (e) { /* storage disabled */ }
    try {
      document.cookie = NAME + "=" + id + "; max-age=2592000; path=/; SameSite=Lax" +
        (location.protocol === "https:" ? "; Secure" : "");
    } catch (e) { /* cookies disabled */ }
  }

  function device() {
    const ua = navigator.userAgent;
    if (/iPad|Tablet|Silk|Kindle|Android(?!.*Mobi)/i.test(ua) ||
        (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return "tablet"; // iPadOS 13+
    return /Mobi|iPhone|iPod|Android|BlackBerry|Opera Mini/i.test(ua) ? "mobile" : "desktop";
  }

  function unbounce() {
    const page = window.ub && window.ub.page;
    const s = (v) => (v == null || v === "" ? undefined : String(v).slice(0, 128));
    const ids = page && { page_id: s(page.id), variant_id: s(page.variantId), visitor_id: s(page.visitorId) };
    return ids && (ids.page_id || ids.variant_id || ids.visitor_id) ? ids : undefined;
  }

  // A CORS simple request (text/plain: no preflight); a non-200 answer, a body that is not a JSON
  // object, or no answer within 5 seconds rejects.
  function post(path, body) {
    const abort = new AbortController();
    const timeout = setTimeout(guard(() => abort.abort()), 5000);
    return fetch(origin + path, {
      method: "POST", body: JSON.stringify(body), headers: { "Content-Type": "text/plain" },
      credentials: "omit", keepalive: true, signal: abort.signal,
    }).then((response) => {
      if (response.status !== 200) throw response.status;
      return response.json();
    }).then((answer) => {
      if (!answer || typeof answer !== "object") throw answer;
      return answer;
    }).finally(() => clearTimeout(timeout));
  }

  // Finds `from` written any usual way (North American numbers with or without the 1) and
  // rewrites its digits one by one with those of `to`, keeping every separator.
  function rule(from, to) {
    const d = from.slice(1);
    const nanp = d.length === 11 && d[0] === "1";
    const pattern = (nanp ? "(?:1" + SEP + ")?" : "") + d.slice(nanp ? 1 : 0).split("").join(SEP);
    return { re: new RegExp(pattern, "g"), from: d, to: to.slice(1), number: to };
  }

  function rewrite(found, r) {
    if (r.to.length !== r.from.length) return r.number; // another length: write it whole
    let i = r.to.length, out = "";
    for (let k = found.length; k--;) out = (/\d/.test(found[k]) ? r.to[--i] : found[k]) + out;
    return out;
  }

  function replace(text, list) {
    for (const r of /\d/.test(text) ? list : []) {
      text = text.replace(r.re, (found, at, all) =>
        // Inside a longer run of digits (an order number, another phone number): not ours.
        /\d/.test(all.charAt(at - 1) + all.charAt(at + found.length)) ? found : rewrite(found, r));
    }
    return text;
  }

  const skipped = (el) => !el || el.closest(SKIP) || el.isContentEditable;

  function swap(node, list) {
    const text = node.nodeType === 3;
    const value = text ? node.nodeValue : node.getAttribute("href");
    if (!value || (!text && !/^\s*(tel|callto):/i.test(value))) return;
    const next = replace(value, list);
    if (next === value) return;
    if (text) node.nodeValue = next; else node.setAttribute("href", next);
  }

  function swapTree(root, list) {
    if (!list.length || skipped(root.nodeType === 1 ? root : root.parentElement)) return;
    if (root.nodeType === 3) return swap(root, list);
    if (root.nodeType !== 1) return;
    swap(root, list);
    const walker = document.createTreeWalker(root, 5 /* elements and text */, {
      acceptNode: (n) => (n.nodeType === 1 && (n.matches(SKIP) || n.isContentEditable) ? 2 : 1),
    });
    for (let n; (n = walker.nextNode());) swap(n, list);
  }

  // The server's swaps: targets, and numbers shown before for them, become the current numbers.
  function apply(swaps) {
    const now = [];
    for (const s of Array.isArray(swaps) ? swaps : []) {
      if (!s || !E164.test(s.target) || !E164.test(s.number) || numbers[s.target] === s.number) continue;
      now.push(rule(s.target, s.number));
      if (numbers[s.target]) now.push(rule(numbers[s.target], s.number));
      numbers[s.target] = s.number;
    }
    if (!now.length) return;
    rules = Object.keys(numbers).map((t) => rule(t, numbers[t]));
    observer = observer || new MutationObserver(guard((records) => {
      for (const r of records) {
        if (r.type === "childList") r.addedNodes.forEach((n) => swapTree(n, rules));
        else swapTree(r.target, rules);
      }
      observer.takeRecords(); // our own changes: nothing to do, and no loop
    }));
    observer.takeRecords(); // content not seen yet is in the documentElement swapped below
    swapTree(document.documentElement, now);
    observer.takeRecords();
    observer.observe(document.documentElement, {
      childList: true, subtree: true, characterData: true, attributeFilter: ["href"],
    });
  }

  const visible = () => document.visibilityState !== "hidden";

  function schedule() {
    clearTimeout(timer);
    if (!stopped && visible()) timer = setTimeout(guard(beat), period);
  }

  function beat() {
    if (stopped || !visible()) return;
    schedule();
    post("/dni/heartbeat", { key, visitor, visit }).then(guard((answer) => apply(answer.swaps)),
      guard((error) => {
        // The visit is unknown or refused: stop. Rate limited (429), a network failure: go on.
        if (error >= 400 && error < 500 && error !== 429) stopped = true;
      })).catch(noop);
  }

  function start() {
    let tag = document.currentScript;
    if (!tag || !tag.getAttribute("data-key")) {
      const all = document.querySelectorAll('script[src$="/dni.js"][data-key]');
      tag = all[all.length - 1];
    }
    if (!tag || !/^https?:$/.test(location.protocol)) return;
    key = tag.getAttribute("data-key");
    origin = new URL(tag.src, location.href).origin;
    visitor = loadVisitor();
    post("/dni/visits", {
      key, visitor, page: location.href.slice(0, 2048), referrer: document.referrer.slice(0, 2048),
      device: device(), unbounce: unbounce(),
    }).then(guard((answer) => {
      keepVisitor(answer.visitor);
      apply(answer.swaps);
      if (typeof answer.visit !== "string" || !answer.visit) return;
      visit = answer.visit;
      const seconds = Number(answer.heartbeat_seconds);
      if (seconds >= 1 && seconds <= 86400) period = seconds * 1000;
      document.addEventListener("visibilitychange", guard(() => (visible() ? beat() : clearTimeout(timer))));
      schedule();
    })).catch(noop);
  }

  guard(start)();
})();
