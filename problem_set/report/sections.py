"""The report's sections, in the problem set's order, as blocks (problem_set/report/doc.py): first
the questions with their measured answers, then every table and figure, then the
environment. A stage that is missing shows as "not run" where its results would be."""

from __future__ import annotations

from problem_set.report import facts, origins
from problem_set.report.divergence import divergences
from problem_set.report.doc import Block, Bullets, Figure, Heading, Table, Text
from problem_set.report.environment import environment
from problem_set.report.facts import pct
from problem_set.report.insights import insights
from problem_set.report.questions import questions
from problem_set.report.sources import Run, Source
from ucl import summary, sweep_figures, sweeps

GAN_EPOCH_GRIDS = 4  # per-epoch sample grids shown: the first, the last, evenly between


def build(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(1, "The problem set, reproduced")]
    blocks += [Text(_provenance(src))]
    blocks += questions(src)
    blocks += classification(src)
    blocks += autoencoders(src)
    blocks += vae(src)
    blocks += gan(src)
    blocks += divergences(src)
    blocks += insights(src)
    blocks += environment(src)
    return blocks


def _provenance(src: Source) -> str:
    text = f"Built from the runs under `{src.root}` by `python scripts/report.py`."
    if src.smoke:
        text += (
            " **Smoke run**: tiny settings (a few iterations on a 2000-digit MNIST subset), "
            "so the numbers below only show that the pipeline works, not the problem set's "
            "results."
        )
    return text


# -- classification -----------------------------------------------------------------------


def classification(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Classification")]
    blocks += classifier_run(src.run("logreg"), "Logistic regression")
    for stage, pivot in (
        ("activation_sweep", None),
        ("width_sweep", None),
        ("lr_sweep", None),
        ("optimizer_sweep", ("optimizer", "lr")),
    ):
        blocks += sweep_table(src, stage, origins.TABLES[stage], pivot)
    blocks += classifier_run(src.run("best_mlp"), "The best one-hidden-layer network")
    return blocks


def classifier_run(run: Run, title: str) -> list[Block]:
    blocks: list[Block] = [Heading(3, title)]
    if not run.ok:
        return [*blocks, Text(run.why_missing())]
    blocks.append(Text(facts.accuracy_answer(run, "Reached") + f". Overrides: `{_args(run)}`."))
    blocks += _figures(run, [("error_curves", "train and test error against the iteration")])
    blocks += _figures(run, [("confusion_matrix", "confusion matrix on the test set")])
    pairs = run.get("most_confused") or []
    if pairs:
        blocks.append(Text("The test digits it confuses most, as (true, predicted) pairs:"))
        blocks.append(
            Table(
                ["true", "predicted as", "count"],
                [[p["true"], p["predicted"], p["count"]] for p in pairs],
            )
        )
    return blocks


def sweep_table(src: Source, stage: str, title: str, pivot=None) -> list[Block]:
    """What every job held fixed and where a value taken from an earlier table came from,
    the table over seeds (mean ± 95% interval, the best cell by validation accuracy, the
    cells within noise of it), what the seeds support in words, and the figure; one row per
    job when each cell has one seed."""
    blocks: list[Block] = [Heading(3, title)]
    jobs = src.jobs(stage)
    if not jobs:
        return [*blocks, Text(src.run(stage).why_missing())]
    settings = " ".join(t for t in (origins.fixed(src, stage), origins.sentences(src, stage)) if t)
    if settings:
        blocks.append(Text(settings))
    frame = sweeps.from_jobs(jobs)  # the tables summarize.py prints
    choose = sweeps.choose_metric(frame)
    cells = sweeps.cells(frame, "test/accuracy", choose, as_written=True)
    over_seeds = sweeps.seeds_per_cell(frame) >= 2
    if over_seeds:
        table = sweeps.cell_table(cells, "test/accuracy", choose)
    else:
        table = sweeps.job_table(frame)
    if pivot:
        two_way = sweeps.pivot(frame, *pivot, "test/accuracy", over_seeds)
        blocks += [Text(f"Test accuracy, {pivot[0]} by {pivot[1]}:"), _table(two_way)]
    blocks.append(_table(table))
    if choose:
        blocks.append(Bullets(sweeps.conclusions(frame, choose, "test/accuracy")))
    if problems := summary.failures(jobs):
        blocks.append(Bullets([f"not completed: {p}" for p in problems]))
    figs = sweep_figures.figures(cells, "test/accuracy")
    for path in sweep_figures.save(src.root / stage, figs):
        caption = f"{stage}: test accuracy, mean and 95% interval over the seeds"
        blocks.append(Figure(path, caption, f"{stage}_{path.name}"))
    found = facts.best_cell(src, stage)
    if found:
        best = found[0].completed[0]
        run = Run(stage, best.path, {"status": "completed"})
        blocks += _figures(
            run, [("error_curves", f"error curves of the best cell ({best.path.name})")]
        )
    return blocks


def _table(frame) -> Table:
    return Table(list(frame.columns), frame.astype(object).values.tolist())


# -- autoencoders -------------------------------------------------------------------------

LATENT_FIGURES = [
    ("loss_curves", "reconstruction loss against the iteration"),
    ("embedding", "the 2-D code of test samples, interpolation paths drawn on it"),
    ("reconstructions", "one test sample per class beside its reconstruction"),
    ("interpolations", "decoded points along the interpolation paths"),
]


def autoencoders(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Autoencoders")]
    mnist = src.run("autoencoder_mnist")
    blocks.append(Heading(3, "MNIST"))
    if mnist.ok:
        blocks.append(Text(facts.embedding_answer(mnist) + "."))
        blocks += _linked(src, mnist)
        blocks += _latent_table(mnist)
        blocks += _closest_pairs(mnist)
        blocks += _figures(mnist, LATENT_FIGURES)
    else:
        blocks.append(Text(mnist.why_missing()))
    retina = src.run("autoencoder_retina")
    label = " (synthetic stand-in)" if retina.synthetic else ""
    blocks.append(Heading(3, f"Retinal bipolar cells{label}"))
    if retina.ok:
        blocks.append(Text(facts.retina_answer(retina) + "."))
        blocks += _latent_table(retina)
        blocks.append(Text("Per class, the nearest-code accuracy and the silhouette:"))
        blocks.append(_per_class(retina))
        blocks += _figures(retina, LATENT_FIGURES)
    else:
        blocks.append(Text(retina.why_missing()))
    return blocks


LATENT_ROWS = [  # (metric, what it is) in an autoencoder's table
    ("test/mse", "test error per element (mean squared)"),
    ("train/mse", "training error per element (mean squared)"),
    ("latent/knn_accuracy", "nearest-code (kNN) accuracy of the 2-D code"),
    ("latent/silhouette", "silhouette of the classes in the code"),
    ("latent/trustworthiness", "trustworthiness of the code (neighbourhoods kept)"),
    ("latent/distance_rank_correlation", "rank correlation of input and code distances"),
    ("interpolation/confidence", "classifier confidence on interpolants"),
    ("random_codes/confidence", "classifier confidence, codes from a Gaussian fitted to the codes"),
    ("steps", "training iterations"),
]


def _latent_table(run: Run) -> list[Block]:
    m = run.metrics
    rows = [[label, m.get(k)] for k, label in LATENT_ROWS if k in m]
    return [Text("What the run measured of its code:"), Table(["measure", "value"], rows)]


def _closest_pairs(run: Run) -> list[Block]:
    pairs = run.metrics.get("latent/closest_pairs") or []
    if not pairs:
        return []
    return [
        Text("Nearest class centroids in the code (training codes):"),
        Table(
            ["class", "class", "centroid distance"],
            [[p["a"], p["b"], p["distance"]] for p in pairs],
        ),
    ]


def _per_class(run: Run) -> Table:
    knn = run.metrics.get("latent/knn_accuracy_per_class") or {}
    sil = run.metrics.get("latent/silhouette_per_class") or {}
    rows = [[c, knn[c], sil.get(c)] for c in sorted(knn, key=lambda c: -knn[c])]
    return Table(["class", "kNN accuracy", "silhouette"], rows)


# -- VAE ----------------------------------------------------------------------------------

VAE_ROWS = [  # (metric, what it is) compared between the autoencoder and the VAE
    ("test/mse", "test error per pixel (mean squared)"),
    ("latent/knn_accuracy", "nearest-code (kNN) accuracy of the 2-D code"),
    ("latent/silhouette", "silhouette of the classes in the code"),
    ("latent/trustworthiness", "trustworthiness of the code (neighbourhoods kept)"),
    ("latent/distance_rank_correlation", "rank correlation of pixel and code distances"),
    ("interpolation/confidence_between", "classifier confidence, interpolants between classes"),
    ("interpolation/confidence_within", "classifier confidence, interpolants within a class"),
    ("interpolation/confidence_ends", "classifier confidence, decoded test digits"),
    ("random_codes/confidence", "classifier confidence, codes from a Gaussian fitted to the codes"),
    ("random_codes/classes", "classes those decoded random codes fall in"),
]


def vae(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Variational autoencoder")]
    run = src.run("vae")
    if not run.ok:
        return [*blocks, Text(run.why_missing())]
    blocks.append(Text(facts.ae_vae_answer(src) + "."))
    blocks += _linked(src, run)
    blocks.append(
        Text(
            "The autoencoder and the VAE on the same test digits (the autoencoder measured "
            "by the VAE run, so both see the same digits and interpolation pairs):"
        )
    )
    m = run.metrics
    rows = [
        [label, _count(key, m.get(f"autoencoder/{key}")), _count(key, m.get(key))]
        for key, label in VAE_ROWS
        if key in m or f"autoencoder/{key}" in m
    ]
    prior = m.get("samples/confidence")
    rows.append(["classifier confidence, samples from the prior", None, prior])
    blocks.append(Table(["measure", "autoencoder", "VAE"], rows))
    blocks += _figures(
        run,
        [
            ("loss_curves", "negative ELBO against the iteration"),
            ("loss_terms", "reconstruction and KL terms of the test loss"),
            ("embedding", "the VAE's 2-D code (posterior means) of test digits"),
            ("reconstructions", "one test digit per class beside its reconstruction"),
            ("interpolations", "decoded interpolation paths"),
            ("manifold", "the decoded 2-D manifold (grid through the inverse normal CDF)"),
            ("samples", "decoded samples from the prior"),
        ],
    )
    return blocks


def _count(key: str, value):
    """A count metrics.json holds as a float (random_codes/classes) shown as a whole number."""
    return int(value) if key.endswith("/classes") and value is not None else value


# -- GAN ----------------------------------------------------------------------------------

GAN_ROWS = [  # (samples/<key>, what it is) in the GAN-against-VAE table
    ("score", "classifier score"),
    ("frechet", "Fréchet distance to real digits"),
    ("confidence", "classifier confidence"),
    ("saturated_ink", "saturated ink (stroke sharpness)"),
    ("chi2", "chi-squared against MNIST's class shares"),
    ("min_class_share", "rarest class's share"),
]


def gan(src: Source) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Generative adversarial network")]
    run, vae_run = src.run("gan"), src.run("vae")
    if not run.ok:
        return [*blocks, Text(run.why_missing())]
    blocks += _linked(src, run)
    grids = run.figures("samples_epoch_*")
    for path in _spread(grids, GAN_EPOCH_GRIDS):
        epoch = int(path.stem.rsplit("_", 1)[-1])
        blocks.append(Figure(path, f"GAN samples from fixed noise after epoch {epoch}"))
    n = sum(run.metrics.get("samples/class_counts") or []) or "the"
    blocks += _figures(run, [("samples", f"{n} final samples")])
    blocks.append(Text(facts.histogram_answer(src) + "."))
    counts = run.metrics.get("samples/class_counts") or []
    real = run.metrics.get("real/class_counts") or []
    shares = facts.mnist_shares(src)
    if counts:
        rows = []
        for c, k in enumerate(counts):
            rows.append(
                [
                    c,
                    k,
                    pct(k / sum(counts)),
                    real[c] if c < len(real) else None,
                    pct(shares[c]) if shares else None,
                ]
            )
        blocks.append(Table(["class", "GAN samples", "share", "real digits", "MNIST share"], rows))
    blocks += _figures(run, [("class_histogram", "classes of the GAN's samples against MNIST's")])
    if run.figure("class_epochs") is not None:
        blocks.append(
            Text(
                "The classes of the samples drawn from the same fixed noise after every epoch "
                "(the per-epoch grids above), as the best classifier labels them; the bar at "
                "the right holds MNIST's shares:"
            )
        )
        caption = "class shares of the fixed-noise samples by epoch"
        blocks += _figures(run, [("class_epochs", caption)])
    rows = [
        [
            label,
            run.metrics.get(f"samples/{k}"),
            vae_run.metrics.get(f"samples/{k}") if vae_run.ok else None,
            run.metrics.get(f"real/{k}"),
        ]
        for k, label in GAN_ROWS
    ]
    blocks += [
        Text(
            "GAN against VAE, judged by the best classifier (score: at most the number of "
            "classes, higher is better; Fréchet distance of the classifier's features to real "
            "digits: lower is better; saturated ink: the share of ink pixels fully on):"
        ),
        Table(["measure", "GAN", "VAE", "real test digits"], rows),
    ]
    blocks += _figures(
        run,
        [
            ("loss_curves", "discriminator and generator losses against the iteration"),
            ("discriminator_curves", "D(x) and D(G(z)) against the iteration"),
        ],
    )
    return blocks


def _spread(items: list, k: int) -> list:
    """k items evenly spread over the list, first and last included."""
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


# -- shared -------------------------------------------------------------------------------


def _linked(src: Source, run: Run) -> list[Block]:
    """The earlier runs `run` read, with their identities (none: nothing)."""
    text = origins.linked(src, run)
    return [Text(text)] if text else []


def _figures(run: Run, wanted: list[tuple[str, str]]) -> list[Block]:
    out: list[Block] = []
    synthetic = " (synthetic data)" if run.synthetic else ""
    for name, caption in wanted:
        path = run.figure(name)
        if path is not None:
            out.append(
                Figure(path, f"{run.stage}: {caption}{synthetic}", f"{_flat(run.stage)}_{name}.png")
            )
    return out


def _flat(stage: str) -> str:
    return stage.replace("/", "_")


def _args(run: Run) -> str:
    return " ".join(
        o for o in (run.record or {}).get("overrides", []) if not o.startswith("dataset.")
    )
