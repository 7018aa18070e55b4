// #/new — a form for POST /api/v1/trainings that shows the JSON it sends, then opens the new operation. An empty field
// is left out of the spec, so the server fills its default; the placeholders show those defaults, read from the one
// table the server fills them from (src/schemas/defaults.ts, served as /assets/schemas/defaults.js).

import { DEFAULTS } from "schemas/defaults.js";
import { html, render } from "../lib/html.js";
import { submitTraining } from "../lib/widgets.js";
import { recipeSection } from "./recipe_form.js";

const D = DEFAULTS;
/** A select whose first choice sends nothing (the default, named in it), then every value. */
const choices = (name, values, dflt) =>
  html`<select name="${name}"><option value="">${dflt} (default)</option>${values.map((v) => html`<option>${v}</option>`)}</select>`;

export function newTrainingView(root) {
  render(
    root,
    html`
    <section class="card narrow">
      <h1>New training</h1>
      <p class="muted">A small multilayer perceptron on a generated dataset, trained in a worker on this server (or a GPU host). Empty fields take the spec's defaults.</p>
      <form id="spec-form" class="form">
        <label>Name <input name="name" placeholder="e.g. spirals-baseline"></label>
        <label>Dataset
          <select name="generator">
            <option value="spirals" selected>spirals — interleaved spiral arms (learns well)</option>
            <option value="overfit">overfit — few noisy samples (overfits within ~30 epochs)</option>
            <option value="random_walk">random_walk — up/down of a random-walk price</option>
          </select>
        </label>
        <div class="cols">
          <label>Samples <input name="samples" type="number" min="10" placeholder="${D.generators.spirals.samples}"></label>
          <label>Classes (spirals) <input name="classes" type="number" min="2" max="8" placeholder="${D.generators.spirals.classes}"></label>
        </div>
        <div class="cols">
          <label>Hidden layers <input name="hidden" placeholder="${D.model.hidden_layers.join(",")}" pattern="\\s*\\d+(\\s*,\\s*\\d+)*\\s*|\\s*none\\s*" title="comma-separated units, e.g. 64,32; none: no hidden layer (a linear or logistic model)"></label>
          <label>Activation ${choices("activation", ["relu", "tanh", "sigmoid", "elu", "linear"], D.model.activation)}</label>
          <label>Dropout <input name="dropout" type="number" min="0" max="0.95" step="0.05" placeholder="${D.model.dropout}"></label>
        </div>
        <div class="cols">
          <label>Epochs <input name="epochs" type="number" min="1" max="10000" placeholder="${D.training.epochs}"></label>
          <label>Batch size <input name="batch_size" type="number" min="1" placeholder="${D.training.batch_size}"></label>
          <label>Learning rate <input name="learning_rate" type="number" min="0" step="any" placeholder="${D.training.learning_rate}"></label>
        </div>
        <div class="cols">
          <label>Optimizer ${choices("optimizer", ["adam", "adamw", "sgd", "rmsprop"], D.training.optimizer)}</label>
          <label>Validation split <input name="validation_split" type="number" min="0" max="0.9" step="0.05" placeholder="${D.training.validation_split}"></label>
          <label>Seed <input name="seed" type="number" min="0" placeholder="${D.training.seed}"></label>
        </div>
        <div class="cols">
          <label class="check"><input type="checkbox" name="early_stopping"> Early stopping on ${D.early_stopping.monitor}, patience <input name="patience" type="number" min="0" placeholder="${D.early_stopping.patience}" class="tiny"></label>
          <label>Run on <select name="target"><option value="">server default</option><option value="local">local worker</option><option value="host">GPU host</option></select></label>
        </div>
        <details><summary>Spec (JSON sent to POST /api/v1/trainings)</summary><pre id="spec-preview"></pre></details>
        <div class="row"><span class="spacer"></span><button class="primary" type="submit">Start training</button></div>
        <div id="form-error"></div>
      </form>
    </section>
    <section class="card narrow" id="recipe-card"><p class="muted">Loading recipes…</p></section>`,
  );
  void recipeSection(root.querySelector("#recipe-card"));
  const form = root.querySelector("#spec-form");
  const spec = () => {
    const f = Object.fromEntries(new FormData(form));
    const n = (k) => (f[k] === "" || f[k] === undefined ? undefined : Number(f[k]));
    const s = (k) => f[k] || undefined;
    const hidden = String(f.hidden ?? "").trim();
    const body = {
      name: f.name.trim() || undefined,
      dataset: {
        kind: "synthetic",
        generator: f.generator,
        samples: n("samples"),
        classes: f.generator === "spirals" ? n("classes") : undefined,
      },
      model: {
        hidden_layers:
          hidden === "" ? undefined : hidden === "none" ? [] : hidden.split(",").map((u) => Number(u.trim())),
        activation: s("activation"),
        dropout: n("dropout"),
      },
      training: {
        epochs: n("epochs"),
        batch_size: n("batch_size"),
        learning_rate: n("learning_rate"),
        optimizer: s("optimizer"),
        validation_split: n("validation_split"),
        seed: n("seed"),
        early_stopping: f.early_stopping ? { patience: n("patience") } : undefined,
      },
      target: f.target || undefined,
    };
    return JSON.parse(JSON.stringify(body)); // drops the undefined fields
  };
  const preview = () => (root.querySelector("#spec-preview").textContent = JSON.stringify(spec(), null, 2));
  // The samples default is the chosen generator's.
  form.generator.addEventListener(
    "change",
    () => (form.samples.placeholder = String(D.generators[form.generator.value].samples)),
  );
  form.addEventListener("input", preview);
  preview();
  submitTraining(form, root.querySelector("#form-error"), spec);
  return { name: "new", destroy() {} };
}
