"""Plots for sequence-to-sequence models: attention heatmaps, accuracy against input length."""

import os


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def attention_matrix(model, text, method="greedy", beam_width=4, length_penalty=0.6):
    """The attention weights of `model.translate([text])`: `(output, weights, source_labels, target_labels)`.

    `weights` is `(target tokens + <end>, source tokens + <end>)`, rows summing to 1.
    """
    (output,), details = model.translate([text], method=method, beam_width=beam_width,
                                         length_penalty=length_penalty, return_details=True)
    weights = details["attention_weights"][0]
    tokens = details["tokens"][0]
    if method == "beam":
        weights, tokens = weights[0], tokens[0]
        length = int(details["lengths"][0, 0])
    else:
        length = int(details["lengths"][0])
    source_length = int((details["source"][0] != 0).sum())
    source_labels = [model.source_tokenizer.tokens[i] for i in details["source"][0][:source_length]]
    target_labels = [model.target_tokenizer.tokens[i] for i in tokens[:length]]
    return output, weights[:length, :source_length], source_labels, target_labels


def plot_attention(model, text, path, method="greedy", beam_width=4, length_penalty=0.6):
    """Writes a PNG heatmap of the attention weights for `text` (rows: output, columns: input).

    Args:
        model: a trained `rnnzoo.models.seq2seq.Seq2Seq`.
        text: str, the input.
        path: str, the `.png` to write.
        method, beam_width, length_penalty: as for `Seq2Seq.translate`.

    Returns:
        `path`.
    """
    if not model.attention:
        raise ValueError("`plot_attention` needs a model with attention; this one has a fixed context "
                         "(`Seq2Seq(attention=False)`), whose weights are all 1 on C.")
    output, weights, source_labels, target_labels = attention_matrix(model, text, method, beam_width, length_penalty)
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(0.3 * len(source_labels) + 2, 0.3 * len(target_labels) + 1.5))
    image = axes.imshow(weights, cmap="gray_r", vmin=0.0, vmax=1.0, aspect="equal")
    axes.set_xticks(range(len(source_labels)), source_labels, rotation=90, fontsize=8)
    axes.set_yticks(range(len(target_labels)), target_labels, fontsize=8)
    axes.set_xlabel("input")
    axes.set_ylabel("output")
    axes.set_title(f"{text!r} -> {output!r}", fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.03)
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_accuracy_by_length(lengths, accuracies, path, title="exact match against input length"):
    """Writes a PNG line plot: `accuracies` a dict label -> list of accuracies at `lengths`."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for label, values in accuracies.items():
        axes.plot(lengths, values, marker="o", label=label)
    axes.set_xlabel("input length (characters)")
    axes.set_ylabel("exact match")
    axes.set_ylim(-0.02, 1.02)
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
