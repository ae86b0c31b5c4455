// The narrative rules txt-1 and txt-2 (`htmlChecks()`, which FHIRPath engines leave to the
// host): `text.div` is one well-formed XHTML <div> in the XHTML namespace, using only the
// formatting subset FHIR allows (no script, forms, frames, objects, event handlers, javascript:
// URLs), with some non-whitespace content. The list of elements and attributes is HL7's validator's.
// Narratives are shown to clinicians in browsers: what is not plainly allowed is refused.

const XHTML_NS = 'http://www.w3.org/1999/xhtml';

const ELEMENTS = new Set(
  (
    'p br div h1 h2 h3 h4 h5 h6 a span b em i strong small big tt dfn q var abbr acronym cite ' +
    'blockquote hr address bdo kbd sub sup ul ol li dl dt dd pre table caption colgroup col ' +
    'thead tr tfoot tbody th td code samp img map area'
  ).split(' '),
);

const ANY_ELEMENT_ATTRIBUTES = new Set(
  (
    'title style class id lang xml:lang dir accesskey tabindex span width align valign char ' +
    'charoff abbr axis headers scope rowspan colspan'
  ).split(' '),
);

const ELEMENT_ATTRIBUTES = new Set(
  (
    'a.href a.name img.src img.border div.xmlns blockquote.cite q.cite a.title a.type a.rel ' +
    'a.rev a.hreflang a.charset a.coords a.shape a.target a.accesskey a.tabindex img.alt ' +
    'img.longdesc img.height img.width img.usemap img.ismap map.name area.shape area.coords ' +
    'area.href area.nohref area.alt table.summary table.width table.border table.frame ' +
    'table.rules table.cellspacing table.cellpadding pre.space td.nowrap'
  ).split(' '),
);

const URL_ATTRIBUTES = new Set(['href', 'src', 'cite', 'longdesc', 'usemap']);
const SCRIPTED_URL = /^(javascript|vbscript|data|livescript):/;
const SCRIPTED_STYLE = /expression\(|javascript:|vbscript:|@import|behavior|-moz-binding/;

const NAME = /^[A-Za-z][A-Za-z0-9._-]*(:[A-Za-z][A-Za-z0-9._-]*)?/;
const ATTRIBUTE =
  /^\s+([A-Za-z][A-Za-z0-9._-]*(?::[A-Za-z][A-Za-z0-9._-]*)?)\s*=\s*("[^"<]*"|'[^'<]*')/;
const ENTITY = /&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{0,31});/g;

/** Why a narrative div breaks txt-1/txt-2 (a rule, never its content), or null if it is fine. */
export function narrativeProblem(div: string): string | null {
  let i = 0;
  const open: string[] = [];
  let roots = 0;
  let content = false;
  while (i < div.length) {
    const lt = div.indexOf('<', i);
    const text = div.slice(i, lt < 0 ? div.length : lt);
    if (text.trim()) {
      if (open.length === 0) return 'txt-1: text outside the root <div>';
      if (!wellFormedText(text)) return 'txt-1: not well-formed XML (a stray "&")';
      content = true;
    }
    if (lt < 0) break;
    i = lt;
    if (div.startsWith('<!--', i)) {
      const end = div.indexOf('-->', i + 4);
      if (end < 0) return 'txt-1: unterminated comment';
      i = end + 3;
      continue;
    }
    if (div.startsWith('</', i)) {
      const m = NAME.exec(div.slice(i + 2));
      const close = m && div.slice(i + 2 + m[0].length).match(/^\s*>/);
      if (!m || !close) return 'txt-1: not well-formed XML (a malformed end tag)';
      if (open.pop() !== m[0]) return 'txt-1: not well-formed XML (mismatched end tag)';
      i += 2 + m[0].length + close[0].length;
      continue;
    }
    if (div[i + 1] === '!' || div[i + 1] === '?') {
      return 'txt-1: only elements, text and comments are allowed (no DOCTYPE, CDATA or processing instructions)';
    }
    const m = NAME.exec(div.slice(i + 1));
    if (!m) return 'txt-1: not well-formed XML (a stray "<")';
    const element = m[0];
    if (!ELEMENTS.has(element))
      return `txt-1: element <${safeTag(element)}> is not allowed in a narrative`;
    if (open.length === 0) {
      if (roots++ > 0) return 'txt-1: the narrative must be a single <div>';
      if (element !== 'div') return 'txt-1: the narrative must be a <div> element';
    }
    i += 1 + element.length;
    const seen = new Set<string>();
    for (;;) {
      const a = ATTRIBUTE.exec(div.slice(i));
      if (!a) break;
      const [whole, name, quoted] = a;
      if (seen.has(name)) return 'txt-1: not well-formed XML (a repeated attribute)';
      seen.add(name);
      const problem = attributeProblem(element, name, quoted.slice(1, -1), open.length === 0);
      if (problem) return problem;
      i += whole.length;
    }
    if (open.length === 0 && !seen.has('xmlns')) {
      return 'txt-1: the root <div> must declare the XHTML namespace';
    }
    const end = /^\s*(\/?)>/.exec(div.slice(i));
    if (!end) return `txt-1: not well-formed XML (a malformed <${element}> tag)`;
    i += end[0].length;
    if (element === 'img') content = true;
    if (!end[1]) open.push(element);
  }
  if (roots === 0) return 'txt-1: the narrative must be a <div> element';
  if (open.length > 0) return 'txt-1: not well-formed XML (an unclosed element)';
  if (!content) return 'txt-2: the narrative has no content';
  return null;
}

function attributeProblem(
  element: string,
  name: string,
  raw: string,
  root: boolean,
): string | null {
  if (!wellFormedText(raw)) return 'txt-1: not well-formed XML (a stray "&" in an attribute)';
  const allowed =
    ANY_ELEMENT_ATTRIBUTES.has(name) ||
    ELEMENT_ATTRIBUTES.has(`${element}.${name}`) ||
    name.startsWith('xmlns');
  if (!allowed) {
    return `txt-1: attribute ${safeTag(name)} is not allowed on <${element}> in a narrative`;
  }
  // Browsers ignore whitespace and control characters inside a URL's scheme.
  const value = Array.from(decodeEntities(raw))
    .filter((c) => c.charCodeAt(0) > 32)
    .join('')
    .toLowerCase();
  if (name === 'xmlns' && root && decodeEntities(raw) !== XHTML_NS) {
    return 'txt-1: the root <div> must be in the XHTML namespace';
  }
  if (URL_ATTRIBUTES.has(name) && SCRIPTED_URL.test(value)) {
    if (!(element === 'img' && name === 'src' && value.startsWith('data:image/'))) {
      return `txt-1: a script or data URL in ${name} is not allowed in a narrative`;
    }
  }
  if (name === 'style' && SCRIPTED_STYLE.test(value.replace(/\\/g, ''))) {
    return 'txt-1: scripting in a style attribute is not allowed in a narrative';
  }
  return null;
}

function wellFormedText(text: string): boolean {
  return !text.replace(ENTITY, '').includes('&');
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Enough decoding to see through `&#106;avascript:` and the like. */
function decodeEntities(text: string): string {
  return text.replace(ENTITY, (whole, body: string) => {
    if (body[0] !== '#') return NAMED[body] ?? ' ';
    const code = body[1] === 'x' ? parseInt(body.slice(2), 16) : parseInt(body.slice(1), 10);
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : ' ';
  });
}

/** Tag and attribute names are markup, not data; still, only echo short plain ones. */
function safeTag(name: string): string {
  return /^[A-Za-z][A-Za-z0-9:-]{0,31}$/.test(name) ? name : '(unnamed)';
}
