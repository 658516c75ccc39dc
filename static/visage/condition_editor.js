/* The condition editor in the admin (a campaign's rules, a segment's definition): rows of field / operator / value
   and the field's parameters (window, minimum frames, confidence, campaign, event name: whichever the vocabulary
   lists for the field, with its range and default), grouped by all / any / not. It reads and writes the tree as
   JSON in the textarea, which stays editable beside it ("Edit JSON"). The vocabulary comes from the page
   (#visage-condition-fields); the server validates whatever is saved. With data-preview-url on the textarea the
   tree is posted there as it changes (debounced) and the answer shown: "N subjects now", or the server's error at
   the node it names. No build step, no dependency. */
(function () {
  'use strict';

  const PARAMETER_LABELS = {
    min_confidence: 'confidence ≥', window_seconds: 'window (s)', min_frames: 'min frames', campaign: 'campaign id',
    name: 'event name',
  };
  const PREVIEW_DELAY_MS = 400;
  const GROUPS = ['all', 'any', 'not'];
  const OP_LABELS = {
    eq: '=', ne: '≠', in: 'is one of', not_in: 'is none of', gt: '>', gte: '≥', lt: '<', lte: '≤',
    between: 'between', contains: 'contains', starts_with: 'starts with', ends_with: 'ends with', exists: 'exists',
  };

  function readJson(id, fallback) {
    const element = document.getElementById(id);
    if (!element) return fallback;
    try { return JSON.parse(element.textContent); } catch (error) { return fallback; }
  }

  // Read once the page is parsed: the vocabulary's script element may come after this script.
  let FIELDS = [];
  let BY_NAME = {};
  let FORBIDDEN_REASON = 'Emotion recognition is forbidden in a workplace or education setting (EU AI Act Art. 5(1)(f)).';

  function loadVocabulary() {
    FIELDS = readJson('visage-condition-fields', []);
    BY_NAME = Object.fromEntries(FIELDS.map((f) => [f.field, f]));
    FORBIDDEN_REASON = readJson('visage-emotion-forbidden-reason', FORBIDDEN_REASON);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value === true ? '' : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  // A tree node as the editor holds it: {group: 'all'|'any'|'not', children: [...]} or {leaf: {...json}}.
  function fromJson(node) {
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      for (const group of ['all', 'any']) {
        if (Array.isArray(node[group])) return {group, children: node[group].map(fromJson)};
      }
      if ('not' in node) return {group: 'not', children: [fromJson(node.not)]};
    }
    return {leaf: Object.assign({}, node || {})};
  }

  function toJson(node) {
    if (node.leaf) return node.leaf;
    const children = node.children.map(toJson);
    if (node.group === 'not') return {not: children.length === 1 ? children[0] : {all: children}};
    return {[node.group]: children};
  }

  function newLeaf() {
    return {leaf: {field: '', op: '', value: ''}};
  }

  // A leaf's required parameters at their defaults (optional ones, campaign and name, are left out).
  function parameterDefaults(spec) {
    const values = {};
    for (const [key, range] of Object.entries(spec.parameters || {})) {
      if (!range.optional && range.default !== undefined) values[key] = range.default;
    }
    return values;
  }

  function csrfToken() {
    const input = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : '';
  }

  class Editor {
    constructor(textarea) {
      this.textarea = textarea;
      this.pathRoot = textarea.dataset.pathRoot || 'condition';
      this.previewUrl = textarea.dataset.previewUrl || '';
      this.error = null;  // {path, message} from the preview, shown at its node
      this.forbidden = textarea.dataset.emotionForbidden === 'true';
      this.root = el('div', {class: 'visage-cond-editor'});
      this.message = el('p', {class: 'visage-cond-message', role: 'status'});
      this.toggle = el('button', {type: 'button', class: 'button visage-cond-toggle', text: 'Edit JSON'});
      this.toggle.addEventListener('click', () => this.setJsonVisible(this.textarea.hidden));
      textarea.addEventListener('input', () => { this.loadFromText(); this.schedulePreview(); });
      // One block holding the rows, the toggle and the JSON, so the admin's flex row does not set them side by side.
      const wrap = el('div', {class: 'visage-cond-wrap'});
      textarea.before(wrap);
      wrap.append(this.root, this.message, this.toggle, textarea);
      if (this.previewUrl) {
        this.previewTimer = null;
        this.previewSeq = 0;
        this.size = el('p', {class: 'visage-cond-size', role: 'status', 'aria-live': 'polite'});
        wrap.prepend(this.size);
      }
      this.setJsonVisible(false);
      this.loadFromText();
      this.schedulePreview();
      const setting = document.getElementById('id_setting_of_use');
      if (setting) {
        setting.addEventListener('change', () => {
          this.forbidden = ['workplace', 'education'].includes(setting.value);
          this.render();
        });
      }
    }

    setJsonVisible(visible) {
      this.textarea.hidden = !visible;
      this.toggle.textContent = visible ? 'Hide JSON' : 'Edit JSON';
    }

    loadFromText() {
      const text = this.textarea.value.trim();
      if (!text) {
        this.tree = {group: 'all', children: [newLeaf()]};
        this.message.textContent = '';
        this.render();
        return;
      }
      try {
        const parsed = fromJson(JSON.parse(text));
        this.tree = parsed.leaf ? {group: 'all', children: [parsed]} : parsed;
        this.message.textContent = '';
        this.render();
      } catch (error) {
        // The JSON is kept as typed (the server says what is wrong with it); the rows wait for valid JSON.
        this.message.textContent = 'The JSON does not parse, so the rows cannot show it: ' + error.message;
      }
    }

    write() {
      this.textarea.value = JSON.stringify(toJson(this.tree));
      this.schedulePreview();
    }

    // The live size: the tree as it stands, posted once typing pauses; only the latest answer is shown.
    schedulePreview() {
      if (!this.previewUrl) return;
      clearTimeout(this.previewTimer);
      this.previewTimer = setTimeout(() => this.preview(), PREVIEW_DELAY_MS);
    }

    async preview() {
      const text = this.textarea.value.trim();
      const seq = ++this.previewSeq;
      if (!text) {
        this.error = null;
        this.size.textContent = 'Choose a field to count the subjects who meet the condition.';
        this.size.className = 'visage-cond-size';
        this.size.dataset.size = '';
        this.showError();
        return;
      }
      let tree;
      try { tree = JSON.parse(text); } catch (error) { return; }  // the message under the rows says why
      this.size.textContent = 'Counting…';
      this.size.className = 'visage-cond-size busy';
      let answer;
      try {
        const response = await fetch(this.previewUrl, {
          method: 'POST', credentials: 'same-origin',
          headers: {'Content-Type': 'application/json', 'X-CSRFToken': csrfToken()},
          body: JSON.stringify({definition: tree}),
        });
        answer = await response.json();
      } catch (error) {
        answer = {error: {message: 'The size could not be counted: ' + error.message, path: ''}};
      }
      if (seq !== this.previewSeq) return;  // a newer tree was sent meanwhile
      if (answer.error) {
        this.error = {path: answer.error.path || '', message: answer.error.message || 'invalid'};
        this.size.textContent = (this.error.path ? this.error.path + ': ' : '') + this.error.message;
        this.size.className = 'visage-cond-size invalid';
      } else {
        this.error = null;
        this.size.textContent = `${answer.size} subject${answer.size === 1 ? '' : 's'} now`;
        this.size.className = 'visage-cond-size ok';
      }
      this.size.dataset.size = answer.error ? '' : String(answer.size);
      this.showError();
    }

    // The error at the deepest node whose path starts the error's path ("definition.all[1].window_seconds" is
    // about the row "definition.all[1]").
    showError() {
      for (const node of this.root.querySelectorAll('.visage-cond-invalid')) node.classList.remove('visage-cond-invalid');
      for (const node of this.root.querySelectorAll('.visage-cond-node-error')) node.remove();
      if (!this.error || !this.error.path) return;
      let best = null;
      for (const node of this.root.querySelectorAll('[data-path]')) {
        const path = node.dataset.path;
        const rest = this.error.path.slice(path.length);
        if (this.error.path.startsWith(path) && (rest === '' || rest[0] === '.' || rest[0] === '[')) {
          if (!best || path.length > best.dataset.path.length) best = node;
        }
      }
      if (!best) return;
      best.classList.add('visage-cond-invalid');
      const target = best.classList.contains('visage-cond-row') ? best : best.querySelector('.visage-cond-group-head');
      target.append(el('span', {class: 'visage-cond-node-error', role: 'alert', text: this.error.message}));
    }

    changed() {
      this.write();
      this.render();
    }

    render() {
      this.root.replaceChildren(this.renderGroup(this.tree, null, this.pathRoot));
      const forbidden = this.forbidden && this.root.querySelector('.visage-cond-row.forbidden');
      if (forbidden && !this.message.textContent.startsWith('The JSON')) {
        this.message.textContent = FORBIDDEN_REASON;
      } else if (!forbidden && this.message.textContent === FORBIDDEN_REASON) {
        this.message.textContent = '';
      }
      this.showError();
    }

    renderGroup(node, parent, path) {
      const box = el('div', {class: 'visage-cond-group', 'data-path': path});
      const head = el('div', {class: 'visage-cond-group-head'});
      const kind = el('select', {class: 'visage-cond-group-kind', 'aria-label': 'Group'});
      for (const group of GROUPS) {
        const label = {all: 'all of these', any: 'any of these', not: 'not this'}[group];
        kind.append(el('option', {value: group, text: label, selected: group === node.group}));
      }
      kind.addEventListener('change', () => {
        node.group = kind.value;
        if (node.group === 'not' && node.children.length > 1) node.children = [{group: 'all', children: node.children}];
        this.changed();
      });
      head.append(kind);
      const full = node.group === 'not' && node.children.length >= 1;
      const addLeaf = el('button', {type: 'button', class: 'button visage-cond-add-condition', text: '+ condition', disabled: full});
      addLeaf.addEventListener('click', () => { node.children.push(newLeaf()); this.changed(); });
      const addGroup = el('button', {type: 'button', class: 'button visage-cond-add-group', text: '+ group', disabled: full});
      addGroup.addEventListener('click', () => {
        node.children.push({group: 'any', children: [newLeaf()]});
        this.changed();
      });
      head.append(addLeaf, addGroup);
      if (parent) head.append(this.removeButton(parent, node));
      box.append(head);
      const list = el('div', {class: 'visage-cond-children'});
      node.children.forEach((child, index) => {
        const childPath = node.group === 'not' ? `${path}.not` : `${path}.${node.group}[${index}]`;
        list.append(child.leaf ? this.renderLeaf(child, node, childPath) : this.renderGroup(child, node, childPath));
      });
      box.append(list);
      return box;
    }

    removeButton(parent, node) {
      const button = el('button', {type: 'button', class: 'button visage-cond-remove', text: 'remove', 'aria-label': 'Remove'});
      button.addEventListener('click', () => {
        parent.children = parent.children.filter((child) => child !== node);
        this.changed();
      });
      return button;
    }

    renderLeaf(node, parent, path) {
      const leaf = node.leaf;
      const spec = BY_NAME[leaf.field];
      const row = el('div', {class: 'visage-cond-row', 'data-path': path});
      const field = el('select', {class: 'visage-cond-field', 'aria-label': 'Field'});
      field.append(el('option', {value: '', text: '— field —'}));
      for (const f of FIELDS) {
        const blocked = this.forbidden && f.emotion;
        field.append(el('option', {
          value: f.field, text: f.field + (blocked ? ' (forbidden here)' : ''), selected: f.field === leaf.field,
          disabled: blocked && f.field !== leaf.field, title: blocked ? FORBIDDEN_REASON : f.description,
        }));
      }
      field.addEventListener('change', () => {
        const next = BY_NAME[field.value];
        node.leaf = {field: field.value, op: next ? next.operators[0] : '', value: next ? defaultValue(next, next.operators[0]) : ''};
        if (next) Object.assign(node.leaf, parameterDefaults(next));
        this.changed();
      });
      row.append(field);
      if (spec) {
        const op = el('select', {class: 'visage-cond-op', 'aria-label': 'Operator'});
        for (const name of spec.operators) op.append(el('option', {value: name, text: OP_LABELS[name] || name, selected: name === leaf.op}));
        op.addEventListener('change', () => {
          const previous = leaf.op;
          leaf.op = op.value;
          if (isList(previous) !== isList(leaf.op) || previous === 'between' || leaf.op === 'between' || leaf.op === 'exists') {
            leaf.value = defaultValue(spec, leaf.op);
          }
          this.changed();
        });
        row.append(op, this.valueInput(spec, leaf));
        // The field's own parameters, as the vocabulary lists them (confidence only where it applies).
        for (const [key, range] of Object.entries(spec.parameters || {})) row.append(this.parameterInput(leaf, key, range));
        if (this.forbidden && spec.emotion) {
          row.classList.add('forbidden');
          row.title = FORBIDDEN_REASON;
          row.append(el('span', {class: 'visage-cond-reason', text: 'Not allowed in this setting: EU AI Act Art. 5(1)(f)'}));
        }
      }
      row.append(this.removeButton(parent, node));
      return row;
    }

    // A required parameter shows its default when the leaf has none; an optional one (campaign, name) is left
    // out of the leaf while empty.
    parameterInput(leaf, key, range) {
      const label = PARAMETER_LABELS[key] || key;
      const numeric = !range.optional || key === 'campaign';
      const whole = [range.minimum, range.maximum, range.default].every((v) => v === undefined || Number.isInteger(v));
      const attrs = {type: numeric ? 'number' : 'text', class: `visage-cond-${key}`, 'aria-label': label};
      if (numeric) Object.assign(attrs, {min: range.minimum, max: range.maximum, step: whole ? 1 : 'any'});
      if (range.optional) attrs.placeholder = 'any';
      const input = el('input', attrs);
      input.value = leaf[key] === undefined ? (range.optional ? '' : range.default) : leaf[key];
      input.addEventListener('change', () => {
        if (input.value === '') {
          if (range.optional) delete leaf[key];
          else leaf[key] = range.default;
        } else {
          leaf[key] = numeric ? toNumber(input.value) : input.value;
        }
        this.write();
      });
      return el('label', {class: 'visage-cond-extra'}, label + (range.optional ? ' (optional) ' : ' '), input);
    }

    valueInput(spec, leaf) {
      const write = (value) => { leaf.value = value; this.write(); };
      if (leaf.op === 'exists' || spec.kind === 'bool') {
        const select = el('select', {class: 'visage-cond-value', 'aria-label': 'Value'});
        for (const v of [true, false]) select.append(el('option', {value: String(v), text: String(v), selected: leaf.value === v}));
        select.addEventListener('change', () => write(select.value === 'true'));
        if (typeof leaf.value !== 'boolean') leaf.value = true;
        return select;
      }
      if (leaf.op === 'between') {
        const [low, high] = Array.isArray(leaf.value) ? leaf.value : ['', ''];
        const a = el('input', {type: 'number', step: 'any', class: 'visage-cond-value', 'aria-label': 'From'});
        const b = el('input', {type: 'number', step: 'any', class: 'visage-cond-value', 'aria-label': 'To'});
        a.value = low; b.value = high;
        const update = () => write([toNumber(a.value), toNumber(b.value)]);
        a.addEventListener('change', update); b.addEventListener('change', update);
        return el('span', {}, a, ' and ', b);
      }
      if (spec.values && spec.values.length && ['label', 'consent', 'segment'].includes(spec.kind)) {
        const multiple = isList(leaf.op);
        const select = el('select', {class: 'visage-cond-value', 'aria-label': 'Value', multiple});
        const chosen = multiple ? (Array.isArray(leaf.value) ? leaf.value : []) : [leaf.value];
        if (!multiple) select.append(el('option', {value: '', text: '— value —'}));
        for (const v of spec.values) select.append(el('option', {value: v, text: v, selected: chosen.includes(v)}));
        select.addEventListener('change', () => {
          const values = Array.from(select.selectedOptions).map((o) => o.value);
          write(multiple ? values : values[0] || '');
        });
        return select;
      }
      const input = el('input', {type: spec.kind === 'number' ? 'number' : 'text', step: 'any', class: 'visage-cond-value', 'aria-label': 'Value'});
      if (isList(leaf.op)) {
        input.placeholder = 'comma-separated';
        input.value = Array.isArray(leaf.value) ? leaf.value.join(', ') : '';
        input.addEventListener('change', () => write(input.value.split(',').map((v) => v.trim()).filter(Boolean)
          .map((v) => (spec.kind === 'number' ? toNumber(v) : v))));
      } else {
        input.value = leaf.value === undefined || leaf.value === null ? '' : leaf.value;
        input.addEventListener('change', () => write(spec.kind === 'number' ? toNumber(input.value) : input.value));
      }
      return input;
    }
  }

  function isList(op) { return op === 'in' || op === 'not_in'; }
  function toNumber(text) { return text === '' || Number.isNaN(Number(text)) ? text : Number(text); }
  function defaultValue(spec, op) {
    if (op === 'exists' || spec.kind === 'bool') return true;
    if (op === 'between') return [0, 1];
    if (isList(op)) return [];
    return spec.kind === 'number' ? 0 : '';
  }

  function attach(scope) {
    for (const textarea of scope.querySelectorAll('textarea.visage-condition')) {
      // The inline's hidden template row is cloned by "Add another"; it gets its editor once it is a real row.
      if (textarea.name.includes('__prefix__') || textarea.dataset.editor) continue;
      textarea.dataset.editor = 'on';
      new Editor(textarea);
    }
  }

  document.addEventListener('DOMContentLoaded', () => { loadVocabulary(); attach(document); });
  document.addEventListener('formset:added', (event) => attach(event.target));
})();
