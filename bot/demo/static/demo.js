// The demo page: polls /demo/state and draws the channel as Slack would, from the app's
// own Block Kit; sends what the visitor types and clicks to /demo/command, /demo/click.
"use strict";

const POLL_MS = 700;
// The example chips under the message box, in this order; each is a command from the texts.
const EXAMPLES = ["add", "reason", "large", "balance", "history", "unknown", "refused", "typo", "help"];
const EMOJI = {
  money_with_wings: "💸", hourglass_flowing_sand: "⏳", hourglass: "⌛",
  white_check_mark: "✅", heavy_check_mark: "✔️", ballot_box_with_check: "☑️",
  x: "❌", warning: "⚠️", no_entry_sign: "🚫", no_entry: "⛔", bell: "🔔",
  memory: "🧠", moneybag: "💰", bank: "🏦", mag: "🔍", eyes: "👀", lock: "🔒",
  information_source: "ℹ️", question: "❓", inbox_tray: "📥", outbox_tray: "📤",
  house: "🏠", busts_in_silhouette: "👥", bust_in_silhouette: "👤", tada: "🎉",
  calendar: "📅", memo: "📝", receipt: "🧾", credit_card: "💳", euro: "💶",
  arrow_right: "➡️", arrow_left: "⬅️", repeat: "🔁", clock3: "🕒", raised_hand: "✋",
  thumbsup: "👍", "+1": "👍", large_green_circle: "🟢", red_circle: "🔴",
  small_blue_diamond: "🔹", chart_with_upwards_trend: "📈", chart_with_downwards_trend: "📉",
};

const state = {
  viewer: localStorage.getItem("credit-bot-demo-viewer") || "",
  tab: "channel",
  data: null,
  drawn: "",
  balances: {},
  busy: false,
};

const $ = (id) => document.getElementById(id);

// -- the page's own words (bot/demo/static/<language>.po, served as /demo/texts) --------

const texts = {};

function t(id, values) {
  const template = id in texts ? texts[id] : id;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (values && name in values ? String(values[name]) : whole));
}

// The same, as HTML: the text escaped, the values put in as the HTML given.
function tHtml(id, htmlValues) {
  return escapeHtml(t(id)).replace(/\{(\w+)\}/g, (whole, name) => (name in htmlValues ? htmlValues[name] : whole));
}

function locale() {
  return t("date.locale");
}

async function loadTexts() {
  const answer = await fetch("/demo/texts", { cache: "no-store" }).then((r) => r.json());
  Object.assign(texts, answer.texts);
  document.documentElement.lang = answer.language;
  document.title = t("page.title");
  for (const node of document.querySelectorAll("[data-text]")) node.textContent = t(node.dataset.text);
  for (const node of document.querySelectorAll("[data-text-placeholder]")) node.placeholder = t(node.dataset.textPlaceholder);
}

// Labels that name the channel wait for the first state.
function labelWithChannel(channel) {
  for (const node of document.querySelectorAll("[data-text-label]")) {
    node.setAttribute("aria-label", t(node.dataset.textLabel, { channel }));
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

// Slack escapes exactly these three in message text; they show as the characters.
function unescapeSlack(text) {
  return text.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

// -- mrkdwn ------------------------------------------------------------------------------

function personName(id) {
  const people = (state.data && state.data.people) || [];
  const found = people.find((p) => p.id === id);
  if (found) return found.name;
  if (state.data && state.data.bot.id === id) return state.data.bot.name;
  return id;
}

function formatDate(seconds, format, fallback) {
  const when = new Date(seconds * 1000);
  if (Number.isNaN(when.getTime())) return fallback;
  const day = (d) => new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  const offset = Math.round((day(when) - day(new Date())) / 86400000);
  const relative = { "-1": t("date.yesterday"), "0": t("date.today"), "1": t("date.tomorrow") }[String(offset)];
  const lang = locale();
  const short = when.toLocaleDateString(lang, { month: "short", day: "numeric" });
  const long = when.toLocaleDateString(lang, { weekday: "long", month: "long", day: "numeric", year: "numeric" });
  const parts = {
    date_num: when.toISOString().slice(0, 10),
    date: when.toLocaleDateString(lang, { month: "long", day: "numeric", year: "numeric" }),
    date_short: short,
    date_long: long,
    date_pretty: relative || when.toLocaleDateString(lang, { month: "long", day: "numeric", year: "numeric" }),
    date_short_pretty: relative || short,
    date_long_pretty: relative || long,
    time: when.toLocaleTimeString(lang, { hour: "numeric", minute: "2-digit" }),
    time_secs: when.toLocaleTimeString(lang, { hour: "numeric", minute: "2-digit", second: "2-digit" }),
    ago: agoText(when),
  };
  let unknown = false;
  const text = format.replace(/\{(\w+)\}/g, (_, name) => {
    if (!(name in parts)) unknown = true;
    return parts[name] || "";
  });
  return unknown ? fallback : text;
}

function agoText(when) {
  const seconds = Math.round((when.getTime() - Date.now()) / 1000);
  const span = Math.abs(seconds);
  const [value, unit] = span < 60 ? [seconds, "second"] : span < 3600 ? [Math.round(seconds / 60), "minute"]
    : span < 86400 ? [Math.round(seconds / 3600), "hour"] : [Math.round(seconds / 86400), "day"];
  return new Intl.RelativeTimeFormat(locale(), { numeric: "always" }).format(value, unit);
}

// One <…> token of Slack's message format, as HTML.
function renderToken(inner) {
  const [target, label] = splitOnce(inner, "|");
  if (target.startsWith("@")) {
    const id = target.slice(1);
    const me = id === state.viewer ? " me" : "";
    return `<span class="mention${me}">@${escapeHtml(label || personName(id))}</span>`;
  }
  if (target.startsWith("#")) {
    // <#C…> is drawn with the channel's name, as Slack does; the demo has one channel.
    const id = target.slice(1);
    const channel = state.data && state.data.channel.id === id ? state.data.channel.name : id;
    return `<span class="mention channel">#${escapeHtml(label || channel)}</span>`;
  }
  if (target.startsWith("!subteam^")) {
    const id = target.slice("!subteam^".length);
    const groups = (state.data && state.data.usergroups) || {};
    const name = label ? label.replace(/^@/, "") : groups[id] || id;
    return `<span class="mention group">@${escapeHtml(name)}</span>`;
  }
  if (target.startsWith("!date^")) {
    const [, seconds, format] = target.split("^");
    return `<span class="date">${escapeHtml(formatDate(Number(seconds), format || "", unescapeSlack(label || "")))}</span>`;
  }
  if (["!here", "!channel", "!everyone"].includes(target)) {
    return `<span class="mention group">@${target.slice(1)}</span>`;
  }
  if (/^(https?:|mailto:)/i.test(target)) {
    const href = escapeHtml(unescapeSlack(target));
    const text = escapeHtml(unescapeSlack(label || target.replace(/^mailto:/i, "")));
    return `<a href="${href}" target="_blank" rel="noopener noreferrer">${text}</a>`;
  }
  return escapeHtml(unescapeSlack(`<${inner}>`));
}

function splitOnce(text, separator) {
  const at = text.indexOf(separator);
  return at < 0 ? [text, ""] : [text.slice(0, at), text.slice(at + 1)];
}

// Slack's mrkdwn to safe HTML: code first (nothing inside it is formatted), then <…>
// tokens, then the text itself escaped, then *bold*, _italic_, ~strike~ and :emoji:.
function mrkdwn(source) {
  const held = [];
  const hold = (html) => `\u0000${held.push(html) - 1}\u0000`;
  let text = String(source);
  text = text.replace(/```([\s\S]*?)```/g, (_, code) => hold(`<pre>${escapeHtml(unescapeSlack(code.replace(/^\n/, "")))}</pre>`));
  text = text.replace(/`([^`\n]+)`/g, (_, code) => hold(`<code>${escapeHtml(unescapeSlack(code))}</code>`));
  text = text.replace(/<([^<>\n]+)>/g, (_, inner) => hold(renderToken(inner)));
  text = escapeHtml(unescapeSlack(text));
  const edge = "(^|[\\s(\\[{\"'.,;:!?\\u0000-])";
  const after = "(?=$|[\\s)\\]}\"'.,;:!?\\u0000-])";
  const style = (mark, tag) => {
    const pattern = new RegExp(`${edge}\\${mark}([^\\s${mark}](?:[^${mark}\\n]*?[^\\s${mark}])?)\\${mark}${after}`, "g");
    text = text.replace(pattern, (_, before, inner) => `${before}<${tag}>${inner}</${tag}>`);
  };
  style("*", "b");
  style("_", "i");
  style("~", "s");
  text = text.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
  text = text.replace(/^&gt; ?(.*)$/gm, '<span class="quote">$1</span>');
  text = text.replace(/\n/g, "<br>");
  return text.replace(/\u0000(\d+)\u0000/g, (_, index) => held[Number(index)]);
}

function textObject(object, className) {
  const node = el("div", className || "text");
  if (!object) return node;
  if (object.type === "mrkdwn") node.innerHTML = mrkdwn(object.text || "");
  else node.textContent = (object.text || "").replace(/:([a-z0-9_+-]+):/g, (whole, name) => (object.emoji !== false && EMOJI[name]) || whole);
  return node;
}

// -- Block Kit -----------------------------------------------------------------------------

function renderBlocks(blocks, where) {
  const container = el("div", "blocks");
  for (const block of blocks || []) {
    const node = renderBlock(block, where);
    if (node) container.appendChild(node);
  }
  return container;
}

function renderBlock(block, where) {
  switch (block.type) {
    case "section": {
      const node = el("div", "block section");
      const body = el("div", "section-body");
      if (block.text) body.appendChild(textObject(block.text));
      if (block.fields) {
        const grid = el("div", "fields");
        for (const field of block.fields) grid.appendChild(textObject(field, "field"));
        body.appendChild(grid);
      }
      node.appendChild(body);
      if (block.accessory && block.accessory.type === "button") {
        node.appendChild(renderButton(block.accessory, block.block_id, where));
      }
      return node;
    }
    case "context": {
      const node = el("div", "block context");
      for (const element of block.elements || []) {
        if (element.type === "image") {
          const image = el("span", "context-image", "🖼");
          image.title = element.alt_text || "";
          node.appendChild(image);
        } else {
          node.appendChild(textObject(element, "context-text"));
        }
      }
      return node;
    }
    case "divider":
      return el("hr", "block divider");
    case "header":
      return textObject(block.text, "block header");
    case "actions": {
      const node = el("div", "block actions");
      for (const element of block.elements || []) {
        if (element.type === "button") node.appendChild(renderButton(element, block.block_id, where));
      }
      return node;
    }
    case "rich_text":
      return el("div", "block text", richText(block));
    case "image": {
      const node = el("div", "block context", `🖼 ${block.alt_text || "image"}`);
      return node;
    }
    default:
      return null;
  }
}

function richText(block) {
  const words = [];
  const walk = (element) => {
    if (element.text) words.push(element.text);
    for (const child of element.elements || []) walk(child);
  };
  walk(block);
  return words.join("");
}

function renderButton(button, blockId, where) {
  const node = el("button", `btn ${button.style || ""}`.trim());
  node.type = "button";
  node.textContent = (button.text && button.text.text) || t("button.default");
  node.dataset.actionId = button.action_id || "";
  node.addEventListener("click", () => {
    const click = { ...where, block_id: blockId || "", action_id: button.action_id || "" };
    if (button.confirm) askFirst(button.confirm, () => sendClick(click, node));
    else sendClick(click, node);
  });
  return node;
}

// A button's confirm dialog, as Slack draws it, before anything is sent.
function askFirst(confirm, onConfirm) {
  const dialog = $("dialog");
  $("dialog-title").textContent = (confirm.title && confirm.title.text) || t("dialog.title");
  const text = $("dialog-text");
  if (confirm.text && confirm.text.type === "mrkdwn") text.innerHTML = mrkdwn(confirm.text.text || "");
  else text.textContent = (confirm.text && confirm.text.text) || "";
  const yes = $("dialog-confirm");
  const no = $("dialog-deny");
  yes.textContent = (confirm.confirm && confirm.confirm.text) || t("dialog.yes");
  no.textContent = (confirm.deny && confirm.deny.text) || t("dialog.no");
  yes.className = `btn ${confirm.style === "danger" ? "danger" : "primary"}`;
  const close = () => { dialog.classList.add("hidden"); yes.onclick = null; no.onclick = null; };
  yes.onclick = () => { close(); onConfirm(); };
  no.onclick = close;
  dialog.classList.remove("hidden");
  yes.focus();
}

// -- talking to the demo server ------------------------------------------------------------

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: state.viewer, ...body }),
  });
  return response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
}

async function sendClick(click, node) {
  node.disabled = true;
  node.classList.add("pending");
  try {
    await post("/demo/click", click);
  } finally {
    await refresh();
  }
}

async function refresh() {
  if (!state.viewer) return;
  try {
    const response = await fetch(`/demo/state?user=${encodeURIComponent(state.viewer)}`, { cache: "no-store" });
    if (!response.ok) return;
    state.data = await response.json();
  } catch (error) {
    document.body.classList.add("offline");
    return;
  }
  document.body.classList.remove("offline");
  draw();
}

// -- drawing -------------------------------------------------------------------------------

function draw() {
  const data = state.data;
  const key = `${data.version}|${state.viewer}|${state.tab}|${data.ready}`;
  if (key === state.drawn) return;
  state.drawn = key;
  drawPeople(data);
  labelWithChannel(data.channel.name);
  drawBalances(data.balances, data.settings);
  drawSettings(data.settings);
  $("channel-view").classList.toggle("hidden", state.tab !== "channel");
  $("home-view").classList.toggle("hidden", state.tab !== "home");
  $("nav-channel").classList.toggle("active", state.tab === "channel");
  $("nav-home").classList.toggle("active", state.tab === "home");
  if (state.tab === "channel") drawTimeline(data);
  else drawHome(data);
}

function avatar(name, className) {
  const node = el("span", `avatar ${className || ""}`.trim(), name.slice(0, 1).toUpperCase());
  node.setAttribute("aria-hidden", "true");
  return node;
}

function drawPeople(data) {
  const box = $("people");
  box.replaceChildren(el("span", "label", t("people.label")));
  for (const person of data.people) {
    const choice = el("button", `person${person.id === state.viewer ? " active" : ""} role-${person.role.replace(/\W+/g, "-")}`);
    choice.type = "button";
    choice.setAttribute("role", "radio");
    choice.setAttribute("aria-checked", String(person.id === state.viewer));
    choice.dataset.user = person.id;
    choice.append(avatar(person.name), el("span", "who", person.name), el("span", "role", t(`role.${person.role.replace(/\W+/g, "_")}`)));
    choice.addEventListener("click", () => chooseViewer(person.id));
    box.appendChild(choice);
  }
}

function chooseViewer(userId) {
  state.viewer = userId;
  localStorage.setItem("credit-bot-demo-viewer", userId);
  state.drawn = "";
  if (state.tab === "home") openHome();
  else refresh();
}

function drawTimeline(data) {
  const timeline = $("timeline");
  const atBottom = timeline.scrollHeight - timeline.scrollTop - timeline.clientHeight < 40;
  const items = [];
  if (!data.ready) items.push(el("div", "notice", t("timeline.starting")));
  if (data.messages.length === 0) {
    const intro = el("div", "intro");
    const name = (role) => `<b>${escapeHtml((data.people.find((p) => p.role === role) || { name: role }).name)}</b>`;
    const steps = [
      tHtml("intro.step1", { requester: name("requester"), command: `<code>${escapeHtml(t("example.add"))}</code>` }),
      tHtml("intro.step2", { approver1: name("approver 1"), approver2: name("approver 2") }),
      tHtml("intro.step3", {}),
      tHtml("intro.step4", { home: "<b>credit-bot</b>" }),
    ];
    intro.innerHTML = `<div class="intro-title">${tHtml("intro.title", { channel: `<b>#${escapeHtml(data.channel.name)}</b>` })}</div>
      <ol>${steps.map((step) => `<li>${step}</li>`).join("")}</ol>
      <div class="hint">${tHtml("intro.hint", { outsider: name("someone else") })}</div>`;
    items.push(intro);
  }
  for (const message of data.messages) items.push(drawMessage(message, data));
  timeline.replaceChildren(...items);
  if (atBottom || state.justSent) timeline.scrollTop = timeline.scrollHeight;
  state.justSent = false;
}

function timeOf(ts) {
  return new Date(Number(ts) * 1000).toLocaleTimeString(locale(), { hour: "numeric", minute: "2-digit" });
}

function drawMessage(message, data) {
  if (message.kind === "command") {
    const viewer = data.people.find((p) => p.id === state.viewer);
    const role = viewer ? viewer.role.replace(/\W+/g, "-") : "";
    const row = el("div", `message typed ephemeral role-${role}`);
    row.append(avatar(personName(state.viewer)));
    const body = el("div", "message-body");
    const meta = el("div", "meta");
    meta.append(el("span", "name", personName(state.viewer)), el("span", "only-you", t("message.typed_only_you")));
    const code = el("code", "command-text", message.text);
    body.append(meta, code);
    row.appendChild(body);
    return row;
  }
  const row = el("div", `message from-app${message.ephemeral ? " ephemeral" : ""}`);
  row.dataset.ts = message.ts;
  row.append(avatar(data.bot.name, "bot-avatar"));
  const body = el("div", "message-body");
  const meta = el("div", "meta");
  meta.append(el("span", "name", data.bot.name), el("span", "app-badge", t("message.app")), el("span", "time", timeOf(message.ts)));
  if (message.edited) meta.appendChild(el("span", "edited", t("message.edited")));
  if (message.ephemeral) meta.appendChild(el("span", "only-you", `👁 ${t("message.only_you")}`));
  body.appendChild(meta);
  const where = { where: "message", ts: message.ts };
  if (message.blocks && message.blocks.length) body.appendChild(renderBlocks(message.blocks, where));
  else body.appendChild(textObject({ type: "mrkdwn", text: message.text }));
  if (message.replies.length) {
    const thread = el("div", "thread");
    const count = message.replies.length;
    thread.appendChild(el("div", "thread-count", count === 1 ? t("thread.one") : t("thread.many", { count })));
    for (const reply of message.replies) thread.appendChild(drawMessage(reply, data));
    body.appendChild(thread);
  }
  row.appendChild(body);
  return row;
}

function drawHome(data) {
  const home = $("home");
  if (data.home) {
    home.replaceChildren(renderBlocks(data.home.blocks, { where: "home", view_id: data.home.id }));
    return;
  }
  const empty = el("div", "home-empty");
  empty.innerHTML = state.homeMissing
    ? `<b>${escapeHtml(t("home.missing"))}</b><br>${escapeHtml(t("home.missing_detail"))}`
    : escapeHtml(t("home.opening"));
  home.replaceChildren(empty);
}

function drawBalances(balances, settings) {
  $("main-balance").replaceChildren(moneyNode("main", balances.main, balances.main_shown, "amount-value"));
  const rows = [...balances.subaccounts].map((sub) => {
    const row = el("tr");
    const who = el("td");
    who.append(el("div", "token", sub.token), el("div", "email", sub.email), el("div", "purpose", t(`subaccount.${sub.token}`, settings)));
    const amount = el("td", "num");
    amount.appendChild(moneyNode(sub.token, sub.balance, sub.shown));
    row.append(who, amount);
    return row;
  });
  $("subaccounts").replaceChildren(...rows);
  const moves = [...balances.moves].reverse().slice(0, 8).map((move) => {
    const item = el("li", `move ${move.action}`);
    const arrow = move.action === "add" ? "main → " : "";
    const back = move.action === "remove" ? " → main" : "";
    item.append(
      el("span", "move-amount", `${move.action === "add" ? "+" : "−"}${move.shown}`),
      el("span", "move-path", `${arrow}${move.token}${back}`),
    );
    return item;
  });
  $("moves").replaceChildren(...(moves.length ? moves : [el("li", "empty", t("panel.no_moves"))]));
}

// What the demo told the app, so a visitor knows what to try.
function drawSettings(settings) {
  const lines = ["approvers", "second", "max", "daily", "remind", "timeout"];
  $("settings").replaceChildren(...lines.map((line) => el("li", "", t(`settings.${line}`, settings))));
}

// A balance as the stand-in holds it (an exact string, compared exactly), written the
// language's way; flashes when it moved.
function moneyNode(key, value, shown, className) {
  const node = el("span", `money ${className || ""}`.trim(), shown);
  node.dataset.account = key;
  const before = state.balances[key];
  if (before !== undefined && before !== value) {
    node.classList.add(compareDecimal(value, before) > 0 ? "moved-up" : "moved-down");
  }
  state.balances[key] = value;
  return node;
}

function compareDecimal(a, b) {
  // Both have 3 decimals: comparing as scaled integers never goes through a float.
  const scaled = (v) => BigInt(v.replace(".", ""));
  const diff = scaled(a) - scaled(b);
  return diff > 0n ? 1 : diff < 0n ? -1 : 0;
}

// -- the visitor's input -------------------------------------------------------------------

async function openHome() {
  state.tab = "home";
  state.homeMissing = false;
  state.drawn = "";
  if (state.data) draw();
  const answer = await post("/demo/home", {});
  state.homeMissing = !answer.ok;
  state.drawn = "";
  await refresh();
}

function setUp() {
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const box = $("message-box");
    const text = box.value.trim();
    if (!text) return;
    box.value = "";
    state.justSent = true;
    const answer = await post("/demo/command", { text });
    if (!answer.ok && answer.error) {
      box.value = text;
      box.setCustomValidity(answer.error);
      box.reportValidity();
      setTimeout(() => box.setCustomValidity(""), 2500);
    }
    await refresh();
  });
  for (const name of EXAMPLES) {
    const example = el("button", "", t(`example.${name}`));
    example.type = "button";
    example.dataset.example = name;
    example.addEventListener("click", () => {
      $("message-box").value = t(`example.${name}`);
      $("message-box").focus();
    });
    $("examples").appendChild(example);
  }
  $("nav-channel").addEventListener("click", () => { state.tab = "channel"; state.drawn = ""; refresh(); });
  $("nav-home").addEventListener("click", openHome);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") $("dialog").classList.add("hidden");
  });
}

async function start() {
  await loadTexts();
  setUp();
  const first = await fetch("/demo/state").then((r) => r.json());
  if (!first.people.some((p) => p.id === state.viewer)) state.viewer = first.people[0].id;
  await refresh();
  setInterval(refresh, POLL_MS);
}

start();
