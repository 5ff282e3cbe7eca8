"""The problem set's questions, by its numbers (2.2.1 ... 5.3.3), each answered in words from
the runs: a direct answer first, then what the measurements behind it show, with links to
the tables and figures. Every number comes from a run's metrics.json or history.csv; a stage
that did not complete says so instead.

The question lines paraphrase the problem set's questions (QUESTIONS)."""

from __future__ import annotations

import math
from collections.abc import Callable

from problem_set.report import facts, origins
from problem_set.report.divergence import (
    CLOSED_FORM,
    GAN,
    REAL,
    _var,
    _var_key,
    recommendation,
    separation,
)
from problem_set.report.doc import Block, Heading, Text
from problem_set.report.sources import Run, Source
from problem_set.report.words import (
    compare,
    figure_anchor,
    link,
    measure,
    p_value,
    pct,
    plural,
    pm,
    sig,
    slug,
)
from ucl import aggregate, sweeps

SECTION = "Questions and measured answers"

# Section titles the answers link to (problem_set/report/sections.py and divergence.py write them)
T_LOGREG = "Logistic regression"
T_ACT = origins.TABLES["activation_sweep"]
T_WIDTH = origins.TABLES["width_sweep"]
T_LR = origins.TABLES["lr_sweep"]
T_OPT = origins.TABLES["optimizer_sweep"]
T_BEST = "The best one-hidden-layer network"
T_VAE = "Variational autoencoder"
T_GAN = "Generative adversarial network"
T_SIMPLE = "Uniform box against normals of growing variance (3-D)"
T_DIV_GAN = "MNIST against the GAN's samples (784-D)"


def fig(stage: str, name: str, text: str = "figure") -> str:
    return link(text, figure_anchor(f"{stage}_{name}.png"))


def sec(title: str, text: str | None = None) -> str:
    return link(text or title, slug(title))


# -- 2: classification --------------------------------------------------------------------


# Train and test error this close (a point) show a model that does not overfit
CLOSE_GAP = 0.01


def q221(src: Source) -> str:
    run = src.run("logreg")
    if not run.ok:
        return run.why_missing()
    a = facts.accuracy_steps(run)
    near = a["near_step"]
    text = (
        f"Logistic regression reaches {pct(a['final'])} test accuracy after "
        f"{_int(a['steps'])} iterations, and about {_int(near)} iterations suffice. "
    )
    text += (
        f"From iteration {_int(near)} on its test accuracy stays within "
        f"{100 * facts.NEAR_BEST:g} points of its best ({pct(a['best'])} at iteration "
        f"{_int(a['best_step'])}), so the remaining iterations buy almost nothing "
        f"({sec(T_LOGREG, 'error curves')}). "
    )
    train_error = run.metrics.get("train/error")
    test_error = run.metrics.get("test/error")
    if train_error is not None and test_error is not None:
        text += (
            f"Its training error ends at {pct(train_error)} against a test error of "
            f"{pct(test_error)}: "
        )
        text += (
            "the two are close, so the model is limited by being linear (one weight per "
            "pixel and class), not by overfitting or by too few iterations."
            if abs(test_error - train_error) <= CLOSE_GAP
            else "the gap says it fits its training digits better than it generalises, so more "
            "iterations would not help; more training data or regularisation would."
        )
    return text


def _sweep(src: Source, stage: str, keys: list[str], title: str, what: str) -> tuple[str, str]:
    """(the best cell in words with its test accuracy, what the seeds say about the rest)."""
    found = facts.best_cell(src, stage)
    if found is None:
        return src.run(stage).why_missing(), ""
    best, choose = found
    cells = aggregate.cells(src.jobs(stage))
    chosen = setting(best.params, keys)
    test = best.agg("test/accuracy")
    direct = (
        f"The best {what} is {chosen or 'the only cell'}: {pm(test.mean, test.half_width, True)} "
        f"test accuracy ({sec(title, title.split(':')[0])}). "
    )
    ranked = sorted(cells, key=lambda c: c.agg(choose).mean or -math.inf)
    worst = ranked[0]
    worst_acc = worst.agg("test/accuracy")
    rest = (
        f"It was chosen by {'validation' if choose.startswith('val') else 'test'} accuracy "
        f"among {len(cells)} settings; the weakest, {setting(worst.params, keys)}, reaches "
        f"{pm(worst_acc.mean, worst_acc.half_width, True)}. "
    )
    seeds = aggregate.seeds_per_cell(cells)
    if seeds < 2:
        rest += (
            "Each setting ran once, so no interval says which differences are noise "
            "(the full reproduction runs several seeds per setting)."
        )
    else:
        marked = aggregate.marks(cells, choose)
        near = [c for c in cells if marked.get(id(c)) == sweeps.NEAR]
        if near:
            names = "; ".join(setting(c.params, keys) for c in near)
            rest += (
                f"Over {seeds} seeds (mean ± 95% interval), {names} cannot be told from it "
                "(Welch's t-test, p ≥ 0.05), so the ranking among these is not settled."
            )
        else:
            rest += (
                f"Over {seeds} seeds every other setting is significantly worse (Welch, p < 0.05)."
            )
    if held := origins.brief(src, stage):  # what the table took from the tables before it
        rest += f" Every setting of the table ran with {held}."
    return direct, rest


def setting(params: dict, keys: list[str]) -> str:
    """A table's setting in words: 'tanh', '64 hidden units', 'adam at learning rate 0.01'."""
    words = {
        "activation": "{}",
        "hidden": "{} hidden units",
        "lr": "learning rate {}",
        "optimizer": "{}",
    }
    if keys == ["lr"]:  # "the best learning rate is 0.1"
        words["lr"] = "{}"
    parts = [words.get(k, k + "={}").format(params[k]) for k in keys if k in params]
    return " at ".join(parts) or "the only setting"


def q231(src: Source) -> str:
    direct, rest = _sweep(src, "activation_sweep", ["activation"], T_ACT, "activation")
    return (
        direct + rest + " Without a non-linearity the two layers collapse into one linear map, "
        "which is why the linear network can do no better than logistic regression; a sigmoid "
        "after the output as well squashes the logits before the softmax and slows learning."
    )


def q232(src: Source) -> str:
    direct, rest = _sweep(src, "width_sweep", ["hidden"], T_WIDTH, "hidden width")
    return (
        direct + rest + " A wider layer gives the network more features to separate the "
        "digits with, at the price of more computation per iteration and more weights to fit "
        "from the same training digits."
    )


def q233(src: Source) -> str:
    direct_lr, rest_lr = _sweep(src, "lr_sweep", ["lr"], T_LR, "learning rate")
    direct_opt, rest_opt = _sweep(
        src, "optimizer_sweep", ["optimizer", "lr"], T_OPT, "optimizer and learning rate"
    )
    if not rest_lr or not rest_opt:  # a table is missing: what there is, and why not the rest
        return "; ".join(
            f"{d}{r}".strip() for d, r in ((direct_lr, rest_lr), (direct_opt, rest_opt))
        )
    return (
        f"{direct_lr}{rest_lr} {direct_opt}{rest_opt} Too small a "
        "learning rate leaves the network undertrained in the iterations given, too large a "
        "one makes the updates overshoot; adaptive optimizers (Adam, RMSprop) want a far "
        "smaller rate than plain SGD, which is why the optimizer table crosses both."
    )


def q234(src: Source) -> str:
    run = src.run("best_mlp")
    if not run.ok:
        return run.why_missing()
    a = facts.accuracy_steps(run)
    above = (
        f"it is above {pct(facts.ACCURACY_BAR, 0)} from iteration {_int(a['bar_step'])}"
        if a["bar_step"] is not None
        else f"it never gets above {pct(facts.ACCURACY_BAR, 0)}"
    )
    text = (
        f"{'Yes' if a['bar_step'] is not None else 'No'}: the best one-hidden-layer network "
        f"reaches {pct(a['final'])} test accuracy "
        f"after {_int(a['steps'])} iterations "
        f"({sec(T_BEST, 'error curves and confusion matrix')}); "
        f"{above}. "
    )
    pairs = run.get("most_confused") or []
    if pairs:
        shown = ", ".join(
            f"{p['true']} read as {p['predicted']} ({p['count']} times)"
            for p in pairs[: facts.SHOWN_PAIRS]
        )
        text += (
            f"The digits it confuses most are {shown}. These pairs share strokes (a 4 with a "
            "closed top is a 9, a 7 with a bar or a 2 with a loop), so a few ambiguous "
            "handwritten digits remain that the pixels alone do not settle."
        )
    else:
        text += "It misclassifies no test digit, so no pair stands out."
    return text


# -- 3: autoencoders ----------------------------------------------------------------------


def q311(src: Source) -> str:
    run = src.run("autoencoder_mnist")
    if not run.ok:
        return run.why_missing()
    m = run.metrics
    pairs = m.get("latent/closest_pairs") or []
    closest = ", ".join(f"{p['a']} and {p['b']}" for p in pairs[:3])
    per_class = m.get("latent/knn_accuracy_per_class") or {}
    worst = sorted(per_class.items(), key=lambda kv: kv[1])[:3]
    mixed = ", ".join(f"{k} ({pct(v, 0)})" for k, v in worst)
    return (
        f"The digits that embed closest together are {closest or 'not measured'}: their "
        f"class centres are nearest in the 2-D code ({fig('autoencoder_mnist', 'embedding')}). "
        f"A test digit's nearest training codes share its class "
        f"{pct(m.get('latent/knn_accuracy'))} of the time, and the silhouette is "
        f"{sig(m.get('latent/silhouette'))} (1: separate "
        f"clusters, 0: touching ones), so the classes form overlapping bands rather than "
        f"islands. The classes most mixed with others are {mixed or '–'} (share of their "
        "test digits whose neighbours agree with their class); they are the digits written "
        "with the same strokes as their neighbours in the code."
    )


def q312(src: Source) -> str:
    ae, vae = src.run("autoencoder_mnist"), src.run("vae")
    if not ae.ok:
        return ae.why_missing()
    m = ae.metrics
    inter, ends = m.get("interpolation/confidence"), m.get("interpolation/confidence_ends")
    if inter is None:
        return "The interpolants were not judged: the autoencoder ran without a classifier."
    verdict = {-1: "less realistic than", 0: "as realistic as", 1: "more realistic than"}
    text = (
        f"The interpolants are {verdict[compare(inter, ends)]} the decoded digits they join: the "
        f"best classifier's mean confidence is {sig(inter)} on the points along the lines "
        f"against {sig(ends)} on the decoded end points "
        f"({fig('autoencoder_mnist', 'interpolations', 'interpolations')}). "
        "Between two codes the decoder passes through regions no training digit was mapped "
        "to, and nothing in a reconstruction loss makes those regions decode to digits. "
    )
    random_codes = m.get("random_codes/confidence")
    prior = vae.metrics.get("samples/confidence") if vae.ok else None
    if random_codes is not None:
        text += (
            "A better way to generate images is to give the code a distribution to sample "
            "from and train the decoder on it, which is what the VAE does. Measured: codes "
            "drawn from a Gaussian fitted to the autoencoder's codes decode to digits the "
            f"classifier trusts {sig(random_codes)} on average, the VAE's samples from its "
            f"prior {sig(prior)} ({sec(T_VAE, 'VAE samples')})"
        )
        gain = compare(prior, random_codes)
        text += {
            1: ", so the VAE's way gives the more digit-like images.",
            0: "; here the two are equally digit-like, so the VAE's prior gains nothing "
            "on a Gaussian fitted to the autoencoder's codes.",
            -1: "; here the fitted Gaussian does better, so a Gaussian over the autoencoder's "
            "codes is already a usable way to generate.",
        }[gain]
    return text


def q321(src: Source) -> str:
    run = src.run("autoencoder_retina")
    if not run.ok:
        return run.why_missing()
    good, total = facts.separated_classes(run)
    data = "the synthetic stand-in for the" if run.synthetic else "the"
    retina_title = "Retinal bipolar cells" + (" (synthetic stand-in)" if run.synthetic else "")
    m = run.metrics
    return (
        f"{len(good)} of {total} cell classes separate in the 2-D code of {data} retinal "
        f"bipolar cells ({', '.join(map(facts.short, good)) or 'none'}) "
        f"({fig('autoencoder_retina', 'embedding')}). A class counts as separate when at "
        f"least {pct(facts.SEPARATES_KNN, 0)} of its test cells have their own class as the "
        f"majority of their nearest training codes and its silhouette is above "
        f"{facts.SEPARATES_SILHOUETTE:g} ({sec(retina_title, 'per-class table')}). "
        f"Over all cells the nearest-code accuracy is {pct(m.get('latent/knn_accuracy'))} and "
        f"the silhouette {sig(m.get('latent/silhouette'))}: the large classes get their own "
        "region of the plane, while the small bipolar types share theirs with their neighbours."
    )


# -- 4: VAE and GAN -----------------------------------------------------------------------


def _ae_vae(src: Source) -> tuple[dict, dict] | str:
    """(the autoencoder's metrics on the VAE run's test set, the VAE's), or why not."""
    vae = src.run("vae")
    if not vae.ok:
        return vae.why_missing()
    prefix = "autoencoder/"
    ae = {k[len(prefix) :]: v for k, v in vae.metrics.items() if k.startswith(prefix)}
    if not ae:
        return "The VAE run holds no autoencoder comparison (it ran without autoencoder=)."
    return ae, vae.metrics


def q411(src: Source) -> str:
    got = _ae_vae(src)
    if isinstance(got, str):
        return got
    ae, vae = got
    keys = ("interpolation/confidence_between", "interpolation/confidence_within")
    if any(k not in ae or k not in vae for k in keys):
        return "The interpolants were not judged: the VAE ran without a classifier."
    (ab, aw), (vb, vw) = (ae[k] for k in keys), (vae[k] for k in keys)
    # the gains as printed: each confidence rounded as the sentence shows it
    gain_b = float(sig(vb)) - float(sig(ab))
    gain_w = float(sig(vw)) - float(sig(aw))
    if gain_b == gain_w == 0:
        direct = (
            "Neither between classes nor within them: the VAE's interpolants look as much "
            "like digits as the autoencoder's."
        )
        why = ""
    elif math.isclose(gain_b, gain_w, abs_tol=1e-9):
        better = "more" if gain_b > 0 else "less"
        direct = (
            "As much between classes as within them: the VAE's interpolants look a little "
            f"{better} like digits in both."
        )
        why = (
            " The KL term pulls every code towards the prior, which fills the gaps between "
            "classes and within them alike at this code size."
        )
    else:
        where = "between classes" if abs(gain_b) > abs(gain_w) else "within a class"
        gain = gain_b if where == "between classes" else gain_w
        better = "more" if gain > 0 else "less"
        direct = (
            f"The VAE's latent space differs from the autoencoder's mostly {where}: there its "
            f"interpolants look {better} like digits."
        )
        why = (
            " The KL term pulls every code towards the prior, so the classes touch and a line "
            "from one class to another crosses codes the decoder was trained on; within a "
            "class both models have training codes all along the line, so there is less to "
            "gain."
            if where == "between classes" and gain > 0
            else " Within a class the VAE's codes lie closer together than the autoencoder's, "
            "so a line between two of them stays where the decoder was trained."
        )
    return (
        f"{direct} The classifier's mean confidence on "
        f"interpolants between two digits of different classes goes from {sig(ab)} "
        f"(autoencoder) to {sig(vb)} (VAE), and between two digits of the same class from "
        f"{sig(aw)} to {sig(vw)} ({fig('vae', 'interpolations', 'VAE interpolations')}, "
        f"{fig('autoencoder_mnist', 'interpolations', 'autoencoder interpolations')})." + why
    )


def q412(src: Source) -> str:
    got = _ae_vae(src)
    if isinstance(got, str):
        return got
    ae, vae = got
    sampled = compare(vae.get("samples/confidence"), ae.get("random_codes/confidence"))
    sharper = compare(ae.get("test/mse"), vae.get("test/mse"), 3)
    shown = (
        "Here the measurements bear both halves out."
        if sampled > 0 and sharper < 0
        else "Here the measurements bear this out only in part: "
        + ("the VAE's samples are not more digit-like" if sampled <= 0 else "")
        + (" and " if sampled <= 0 and sharper >= 0 else "")
        + ("the autoencoder does not reconstruct better" if sharper >= 0 else "")
        + " at these settings."
    )
    return (
        "A VAE serves better when new digits must come from the code (sampling, "
        "interpolating); a plain autoencoder serves better when only reconstructions "
        f"matter. Decoding random codes shows the first: the VAE's samples from its prior get "
        f"a mean classifier confidence of {sig(vae.get('samples/confidence'))}, codes drawn "
        f"from a Gaussian fitted to the autoencoder's codes "
        f"{sig(ae.get('random_codes/confidence'))} "
        f"(they fall in {_classes(ae.get('random_codes/classes'))}, the VAE's in "
        f"{_classes(vae.get('random_codes/classes'))}). The reconstructions show the "
        f"second: the test error per pixel is {sig(ae.get('test/mse'))} for the autoencoder "
        f"and {sig(vae.get('test/mse'))} for the VAE ({sec(T_VAE, 'VAE table')}). The VAE "
        "pays for a code it can sample from with its KL term, which keeps codes near the "
        "prior and blurs what a single code can say about its digit. " + shown
    )


def q413(src: Source) -> str:
    got = _ae_vae(src)
    if isinstance(got, str):
        return got
    ae, vae = got
    t_ae, t_vae = ae.get("latent/trustworthiness"), vae.get("latent/trustworthiness")
    r_ae = ae.get("latent/distance_rank_correlation")
    r_vae = vae.get("latent/distance_rank_correlation")
    if t_vae is None:
        return "The VAE run holds no neighbourhood measures."
    local = "keeps" if t_vae >= GOOD_TRUST else "partly keeps"
    far = "and largely" if (r_vae or 0) >= GOOD_RANK else "but only weakly"
    return (
        f"The VAE {local} who is near whom, {far} how far apart digits are. Its "
        f"trustworthiness (are a digit's nearest codes also its nearest digits in pixel "
        f"space? 1 is perfect, about 0.5 random) is {sig(t_vae)} against {sig(t_ae)} for "
        f"the autoencoder, on the same test digits. The rank correlation between pixel-space "
        f"and code-space distances over all pairs is {sig(r_vae)} (autoencoder "
        f"{sig(r_ae)}; 1 would keep every distance's order). A 2-D code cannot keep all the "
        "distances between images of hundreds of pixels; the VAE's KL term also packs the "
        "classes around the origin, which shrinks the large distances between classes more "
        f"than the small ones within them ({fig('vae', 'embedding', 'VAE embedding')})."
    )


ALPHA = 0.05  # a chi-squared test's level: classes drawn unevenly below it
# A code "keeps" neighbourhoods from this trustworthiness on, and distances from this rank
# correlation on (both are 1 for a perfect embedding).
GOOD_TRUST = 0.9
GOOD_RANK = 0.7


def q421(src: Source) -> str:
    gan, vae = src.run("gan"), src.run("vae")
    if not gan.ok or not vae.ok:
        return (gan if not gan.ok else vae).why_missing()
    g, v = gan.metrics, vae.metrics
    if "samples/frechet" not in g or "samples/frechet" not in v:
        return "The samples were not judged: a run went without a classifier."
    better = "GAN" if g["samples/frechet"] < v["samples/frechet"] else "VAE"
    sharp = compare(g.get("samples/saturated_ink"), v.get("samples/saturated_ink"))
    sharper = {1: "The GAN draws the sharper strokes", 0: "Both draw strokes as sharp",
               -1: "The VAE draws the sharper strokes"}[sharp]  # fmt: skip
    return (
        f"The {better}'s samples are the more realistic by the Fréchet distance of the "
        f"classifier's features to real digits ({sig(g['samples/frechet'])} for the GAN, "
        f"{sig(v['samples/frechet'])} for the VAE, {sig(g.get('real/frechet'))} between two "
        f"sets of real digits). The classifier is {sig(g.get('samples/confidence'))} confident "
        f"on the GAN's samples, {sig(v.get('samples/confidence'))} on the VAE's and "
        f"{sig(g.get('real/confidence'))} on real digits; the classifier score is "
        f"{sig(g.get('samples/score'))}, {sig(v.get('samples/score'))} and "
        f"{sig(g.get('real/score'))} ({sec(T_GAN, 'GAN table')}). {sharper}: "
        f"{pct(g.get('samples/saturated_ink'), 0)} of the GAN's ink pixels are "
        f"fully on, {pct(v.get('samples/saturated_ink'), 0)} of the VAE's and "
        f"{pct(g.get('real/saturated_ink'), 0)} of real digits'. The VAE maximises a "
        "per-pixel likelihood, so where a code could mean several digits it draws their "
        "average, grey and blurred; the GAN's generator is trained only to fool a "
        "discriminator, which can reject grey strokes, so it is pushed towards saturated ones"
        + (
            ", at the price of covering the classes unevenly (4.2.2)."
            if (g.get("samples/chi2_p") or 0) < ALPHA
            else "; here it still covers the classes as evenly as MNIST (4.2.2)."
        )
    )


# A class taking at least this share of the fixed-noise samples is a collapse onto it
EARLY_COLLAPSE = 0.5
# The GAN "specialises" when its last epoch's class mix is further from MNIST's than this many
# times the distance a perfect generator's grid shows from its size alone
SPECIALISED = 2.0


def q422(src: Source) -> str:
    run = src.run("gan")
    if not run.ok:
        return run.why_missing()
    m = run.metrics
    counts = m.get("samples/class_counts") or []
    if not counts:
        return "The GAN's samples were not classified (it ran without a classifier)."
    total = sum(counts)
    rare = min(range(len(counts)), key=counts.__getitem__)
    common = max(range(len(counts)), key=counts.__getitem__)
    uniform = (m.get("samples/chi2_p") or 0) >= ALPHA
    direct = (
        "Yes, the GAN draws the classes about as often as MNIST has them"
        if uniform
        else "No, the GAN does not draw every class as often as MNIST has it"
    )
    text = (
        f"{direct}: of its {total} samples, class {common} takes {counts[common]} and class "
        f"{rare} {counts[rare]} (chi-squared against MNIST's class shares "
        f"{sig(m.get('samples/chi2'))}, {p_value(m.get('samples/chi2_p'))}; "
        f"{sig(m.get('real/chi2'))} for real test digits) "
        f"({fig('gan', 'class_histogram', 'class histogram')}). "
    )
    if "epochs/change_mean" not in m:
        return text + "Its classes were not followed over the epochs."
    n, noise = m.get("epochs/samples"), m.get("epochs/noise")
    change, to_real = m.get("epochs/change_mean"), m.get("epochs/to_real_last")
    moves = change is not None and noise is not None and change > noise
    specialised = to_real is not None and noise is not None and to_real > SPECIALISED * noise
    text += (
        f"Over training ({fig('gan', 'class_epochs', 'class shares by epoch')}), the "
        f"{_int(n)} samples drawn from fixed noise change their class mix by "
        f"{pct(change, 0)} from one epoch to the next on average (total-variation distance), "
        f"against {pct(noise, 0)} between MNIST's shares and {_int(n)} real digits drawn at "
        f"random; after the last epoch they are {pct(to_real, 0)} away from MNIST's shares "
        f"and cover {_classes(m.get('epochs/classes_last'))}. "
    )
    collapsed = m.get("epochs/classes_last") == 1
    largest = m.get("epochs/largest_share") or 0
    peak = (
        f"{pct(largest, 0)} of them were class {m.get('epochs/largest_share_class')} after "
        f"epoch {_int(m.get('epochs/largest_share_epoch'))}"
    )
    early = largest >= EARLY_COLLAPSE and not collapsed
    if early:
        text += (
            f"Early on it did collapse: {peak}; it recovered as the discriminator learned to "
            "reject what it overdrew. "
        )
    else:
        text += f"At the most, {peak}. "
    why = (
        "the generator is rewarded for any sample the discriminator accepts, not for "
        "covering the classes, so nothing pulls it towards the classes it draws less well"
    )
    if collapsed or specialised:
        text += f"This is {'complete' if collapsed else 'partial'} mode collapse: {why}" + (
            ", and it keeps moving between classes as the discriminator catches up."
            if moves
            else "."
        )
    elif moves:
        text += (
            "The generator oscillates between classes: as the discriminator learns to reject "
            "the classes it overdraws, it moves to others, the chase that in its extreme is "
            "mode collapse."
        )
    elif not uniform:
        text += (
            "So it specialises mildly and stays so: its class mix moves less from one epoch "
            "to the next than a random draw of as many real digits differs from MNIST's "
            "shares, and it keeps favouring the same classes, a mild and stable form of mode "
            f"collapse: {why}."
        )
    else:
        text += (
            f"No mode collapse {'remains' if early else 'shows'}: the mix stays within what "
            "the sample size alone "
            "explains, because the generator draws from the whole noise space and the "
            "discriminator punishes any class it overdraws."
        )
    return text


# -- 5: divergences -----------------------------------------------------------------------


def q511(src: Source) -> str:
    runs = sorted((r for r in src.job_runs("divergence_simple") if r.ok), key=_var_key)
    if not runs:
        return src.run("divergence_simple").why_missing()
    first, last = runs[0], runs[-1]

    def value(r: Run, key: str) -> float | None:
        return r.metrics.get(f"uniform_vs_normal/{key}")

    def course(key: str) -> str:
        a, b = value(first, key), value(last, key)
        name, trend = measure(key, "uniform", "normal"), compare(b, a)
        if trend == 0:
            return f"the {name} stays at {sig(b)}"
        return f"the {name} {'rises' if trend > 0 else 'falls'} from {sig(a)} to {sig(b)}"

    keys = ["kl_knn_pq", "kl_hist_pq", "emd_exact", "mmd2_unbiased"]
    text = (
        f"As the normal's variance goes from {_var(first)} to {_var(last)}, "
        + ", ".join(course(k) for k in keys)
        + f" ({sec(T_SIMPLE, 'table')}). "
    )
    c_first, c_last = first.metrics.get(CLOSED_FORM), last.metrics.get(CLOSED_FORM)
    if c_first is not None and c_last is not None:
        text += (
            f"The KL in closed form is {sig(c_first)} and {sig(c_last)}: the nearest-neighbour "
            "estimate, which needs no bins and works from distances alone, is the one to set "
            "beside it. "
        )
    hist = [value(r, "kl_hist_pq") for r in (first, last)]
    if any(h is not None and not math.isfinite(h) for h in hist):
        text += (
            "The histogram KL is infinite where a bin holds uniform points but no normal "
            "ones, which a sample of points leaves often, and "
        )
    else:
        text += "The histogram KL depends on its bins, "
    text += (
        "the MMD compares the two through a kernel of the median distance's width, which "
        "grows with the normal's spread, so the MMD need not grow with the variance."
    )
    return text


def _gan_run(src: Source) -> Run | str:
    run = src.run("divergence_gan")
    return run if run.ok else run.why_missing()


def q531(src: Source) -> str:
    run = _gan_run(src)
    if isinstance(run, str):
        return run
    estimates, tests = separation(run)
    repeats = (run.get("divergence_settings") or {}).get("repeats", "the")
    if not estimates:
        return "No effect size was recorded."
    top, *others = estimates
    text = (
        f"The {measure(top.measure)} separates real-against-GAN from real-against-real most: "
        f"its effect size (difference of the means over the pooled spread, over {repeats} "
        f"repeats) is {sig(top.d)}, 95% interval [{sig(top.low)}, {sig(top.high)}] "
        f"({sec(T_DIV_GAN, 'divergence table')}). "
    )
    if others:
        text += (
            "Next come "
            + ", ".join(f"the {measure(e.measure)} ({sig(e.d)})" for e in others[:3])
            + ". "
        )
    text += (
        "An effect size counts how many spreads of the real-against-real values lie between "
        "the two cases, so measures on different scales compare fairly; a negative one "
        "falls where the others rise and separates as well."
    )
    return text


SHOWN_TIMES = 3  # the fastest and the slowest measures named


def q532(src: Source) -> str:
    run = src.run("divergence_gan")
    timed = run if run.ok else src.run("divergence_mnist")
    times = sorted(
        ((k.split("/", 1)[1], v) for k, v in timed.metrics.items() if k.startswith("time/")),
        key=lambda kv: kv[1],
    )
    times = [(k, v) for k, v in times if k != "features"]  # a forward pass, not a measure
    if not times:
        return timed.why_missing()
    (fast, t_fast), (slow, t_slow) = times[0], times[-1]
    quick = ", ".join(f"the {measure(k)} {sig(v)} s" for k, v in times[1:SHOWN_TIMES])
    slowest = ", ".join(f"the {measure(k)} {sig(v)} s" for k, v in times[-SHOWN_TIMES:-1])
    return (
        f"The {measure(fast)} is the fastest at {sig(t_fast)} s per call and the {measure(slow)} "
        f"the slowest at {sig(t_slow)} s, on {timed.stage}'s samples "
        f"({sec(T_DIV_GAN, 'divergence table')}, every measure with its time). Next to the "
        f"fastest come {quick}; next to the slowest {slowest}. The kernel measures cost "
        "one matrix of pairwise distances, the nearest-neighbour KL a neighbour search, the "
        "exact earth mover's distance solves an assignment problem, and every test repeats "
        "its statistic over hundreds of permutations."
    )


def q533(src: Source) -> str:
    run = _gan_run(src)
    if isinstance(run, str):
        return run
    estimates, tests = separation(run)
    repeats = (run.get("divergence_settings") or {}).get("repeats", "the")
    table = f" Every measure's rates and times are in the {sec(T_DIV_GAN, 'divergence table')}."
    return recommendation(estimates, tests, repeats, name=measure) + table + " " + facts_kl(run)


def facts_kl(run: Run) -> str:
    """The KL estimates in words, from the divergence_gan run."""
    from problem_set.report.divergence import _row

    hist, knn = _row(run, "kl_hist_qp"), _row(run, "kl_knn_qp")
    parts = []
    if hist:
        parts.append(
            f"The {measure('kl_hist_qp')} pools all pixels into one histogram of values, so "
            f"it sees how bright pixels are, not the shapes they form: {sig(hist.get(REAL))} "
            f"nats for real against real, {sig(hist.get(GAN))} for real against GAN."
        )
    if knn:
        parts.append(
            f"The {measure('kl_knn_qp')} multiplies a mean log ratio of neighbour distances by "
            f"the number of pixels, so small changes in distance move it by many nats: "
            f"{sig(knn.get(REAL))} real against real, {sig(knn.get(GAN))} real against GAN"
            + (
                "; below zero for two real samples, which a true KL never is: the estimate's "
                "bias at this sample size, magnified the same way."
                if (knn.get(REAL) or 0) < 0
                else "."
            )
        )
    return " ".join(parts)


# -- the section --------------------------------------------------------------------------

# (number, the question paraphrased, the answer)
QUESTIONS: list[tuple[str, str, Callable[[Source], str]]] = [
    ("2.2.1", "What test accuracy does logistic regression reach, and how many iterations "
     "does it need?", q221),
    ("2.3.1", "Which activation function of the hidden layer works best?", q231),
    ("2.3.2", "How does the width of the hidden layer change the accuracy?", q232),
    ("2.3.3", "Which learning rate and optimizer work best?", q233),
    ("2.3.4", "Does the best network pass 95% test accuracy, and which digits does it "
     "confuse?", q234),
    ("3.1.1", "Which digits embed close together in the autoencoder's 2-D code?", q311),
    ("3.1.2", "How realistic are the interpolants, and is there a better way to generate "
     "images with an autoencoder?", q312),
    ("3.2.1", "How many retinal cell classes separate in the 2-D code?", q321),
    ("4.1.1", "How does the VAE's latent space differ from the autoencoder's: between "
     "classes or within them?", q411),
    ("4.1.2", "When does a VAE serve better than a plain autoencoder, and when not?", q412),
    ("4.1.3", "To what extent does the VAE keep the distances between digits?", q413),
    ("4.2.1", "Which samples are more realistic, the GAN's or the VAE's, and why?", q421),
    ("4.2.2", "Does the GAN draw every digit as often as MNIST has it, and why does it "
     "specialise if it does?", q422),
    ("5.1.1", "How do KL, EMD and MMD behave between a uniform box and normals of growing "
     "variance?", q511),
    ("5.3.1", "Which measure separates MNIST against the GAN's samples from MNIST against "
     "MNIST most?", q531),
    ("5.3.2", "How long do the measures take?", q532),
    ("5.3.3", "Which measure would you use, and why do the KL estimates behave as they "
     "do?", q533),
]  # fmt: skip


def questions(src: Source) -> list[Block]:
    blocks: list[Block] = [
        Heading(2, SECTION),
        Text(
            "Each question of the problem set, by its number (worded here in short), answered "
            "from the runs below: the answer first, then the measurements behind it, with "
            "links to their tables and figures. Confidences are the best classifier's mean "
            "top-class probability (1: certain)."
        ),
    ]
    for number, question, answer in QUESTIONS:
        blocks.append(Heading(3, f"{number} {question}"))
        blocks.append(Text(answer(src)))
    return blocks


def _classes(n) -> str:
    return "–" if n is None else plural(n, "class").replace("classs", "classes")


def _int(v) -> str:
    return "–" if v is None else str(int(v))
