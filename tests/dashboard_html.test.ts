// The dashboard's html`…` template (public/lib/html.js) is the page's only path to innerHTML: data must come out as text.
import { describe, expect, test } from "bun:test";
// @ts-expect-error: a plain browser module without type declarations; the assertions below pin its behaviour
import { html, raw, render } from "../public/lib/html.js";

describe("dashboard html template", () => {
  test("an interpolated value is escaped, so a run named like markup shows as text", () => {
    const name = `<img src=x onerror="alert('x')">&`;
    expect(String(html`<b>${name}</b>`)).toBe("<b>&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;&amp;</b>");
  });

  test("a value inside a quoted attribute cannot close the quote", () => {
    expect(String(html`<tr data-op="${'x" onclick="steal()'}">`)).toBe('<tr data-op="x&quot; onclick=&quot;steal()">');
  });

  test("nested templates and arrays of templates stay markup while their values stay escaped", () => {
    const rows = ["<a>", "b"].map((v) => html`<li>${v}</li>`);
    expect(String(html`<ul>${rows}</ul>`)).toBe("<ul><li>&lt;a&gt;</li><li>b</li></ul>");
  });

  test("null, undefined and false render as nothing; numbers and zero as text", () => {
    expect(String(html`${null}|${undefined}|${false}|${0}|${1.5}`)).toBe("|||0|1.5");
  });

  test("only raw() marks a string as markup", () => {
    expect(String(html`${raw("<hr>")}${"<hr>"}`)).toBe("<hr>&lt;hr&gt;");
  });

  test("render refuses a plain string, so unescaped text cannot reach innerHTML", () => {
    const el = { innerHTML: "" };
    expect(() => render(el, "<b>x</b>")).toThrow(TypeError);
    render(el, html`<b>${"<i>"}</b>`);
    expect(el.innerHTML).toBe("<b>&lt;i&gt;</b>");
  });
});
