"""The application over the library: the registry, training recipes, run directories and the CLI.

- `rnnzoo.app.registry`: the one catalogue of layers, models and tasks, and what `rnnzoo train`
  trains (plain data: no backend);
- `rnnzoo.app.recipes`: each trainable model's builder and each task's data;
- `rnnzoo.app.runs`: `TrainConfig`, `train` (resumable), `evaluate`, `export_run` over run
  directories;
- `rnnzoo.app.cli`: the `rnnzoo` command, thin subcommands over the above.

The library (cells, layers, models, export, ...) never imports this package.
"""
