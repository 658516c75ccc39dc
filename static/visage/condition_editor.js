/* The rule's condition editor in the admin: rows of field / operator / value (and, for face fields, minimum
   confidence, window and minimum frames), grouped by all / any / not. It reads and writes the tree as JSON in the
   rule's textarea, which stays editable beside it ("Edit JSON"). The vocabulary comes from the page
   (#visage-condition-fields); the server validates whatever is saved. No build step, no dependency. */
(function () {
  'use strict';

  const FACE_DEFAULTS = {min_confidence: 0.5, window_seconds: 900, min_frames: 3};
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

  class Editor {
    constructor(textarea) {
      this.textarea = textarea;
      this.forbidden = textarea.dataset.emotionForbidden === 'true';
      this.root = el('div', {class: 'visage-cond-editor'});
      this.message = el('p', {class: 'visage-cond-message', role: 'status'});
      this.toggle = el('button', {type: 'button', class: 'button visage-cond-toggle', text: 'Edit JSON'});
      this.toggle.addEventListener('click', () => this.setJsonVisible(this.textarea.hidden));
      textarea.addEventListener('input', () => this.loadFromText());
      // One block holding the rows, the toggle and the JSON, so the admin's flex row does not set them side by side.
      const wrap = el('div', {class: 'visage-cond-wrap'});
      textarea.before(wrap);
      wrap.append(this.root, this.message, this.toggle, textarea);
      this.setJsonVisible(false);
      this.loadFromText();
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
    }

    changed() {
      this.write();
      this.render();
    }

    render() {
      this.root.replaceChildren(this.renderGroup(this.tree, null, 'condition'));
      const forbidden = this.forbidden && this.root.querySelector('.visage-cond-row.forbidden');
      if (forbidden && !this.message.textContent.startsWith('The JSON')) {
        this.message.textContent = FORBIDDEN_REASON;
      } else if (!forbidden && this.message.textContent === FORBIDDEN_REASON) {
        this.message.textContent = '';
      }
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
        if (next && next.face) Object.assign(node.leaf, FACE_DEFAULTS);
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
        if (spec.face) {
          // Confidence only where it applies (expression probabilities, top expression, gender).
          if (spec.parameters && spec.parameters.min_confidence) {
            row.append(this.numberInput(leaf, 'min_confidence', 'confidence ≥', {min: 0, max: 1, step: 0.05}));
          }
          row.append(
            this.numberInput(leaf, 'window_seconds', 'window (s)', {min: 10, max: 604800, step: 1}),
            this.numberInput(leaf, 'min_frames', 'min frames', {min: 1, max: 10000, step: 1}),
          );
        }
        if (this.forbidden && spec.emotion) {
          row.classList.add('forbidden');
          row.title = FORBIDDEN_REASON;
          row.append(el('span', {class: 'visage-cond-reason', text: 'Not allowed in this setting: EU AI Act Art. 5(1)(f)'}));
        }
      }
      row.append(this.removeButton(parent, node));
      return row;
    }

    numberInput(leaf, key, label, limits) {
      const input = el('input', Object.assign({type: 'number', class: `visage-cond-${key}`, 'aria-label': label}, limits));
      input.value = leaf[key] === undefined ? FACE_DEFAULTS[key] : leaf[key];
      input.addEventListener('change', () => {
        leaf[key] = input.value === '' ? FACE_DEFAULTS[key] : Number(input.value);
        this.write();
      });
      return el('label', {class: 'visage-cond-extra'}, label + ' ', input);
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
      if (spec.values && spec.values.length && (spec.kind === 'label' || spec.kind === 'consent')) {
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
