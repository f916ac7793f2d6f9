"""`sleuth models`: the registry for the configured base model; activate or roll back."""

from __future__ import annotations

from sleuth.agent.models.catalog import resolve_model_path
from sleuth.agent.models.files import fingerprint
from sleuth.agent.models.registry import ModelRegistry
from sleuth.store.ids import row_id
from sleuth.train.verdict import Evaluation, summary

from ..render import plain
from .context import Context, UsageError


def add_commands(command) -> None:
    about = "List, activate or roll back trained adapters and reward models."
    p = command("models", cmd_models, about, True)
    p.add_argument("action", choices=["list", "activate", "rollback"], nargs="?", default="list")
    p.add_argument("model_id", type=row_id, nargs="?")
    p.add_argument(
        "--reward",
        action="store_true",
        help="rollback: the reward model (its parent, or none: the reader picks alone)",
    )


def cmd_models(ctx: Context) -> int:
    args, store = ctx.args, ctx.store
    # Listing or rolling back needs the base's identity only once it exists: a model joined
    # from parts (the default) is not joined for them.
    base = resolve_model_path(ctx.settings.model.path, ctx.dirs, prepare=False)
    registry = ModelRegistry(store)
    if args.action == "activate":
        if args.model_id is None:
            raise UsageError("Say which model: `sleuth models activate ID` (`sleuth models list`).")
        store.registry.model(args.model_id)  # an unknown id is refused before any model work
        base = resolve_model_path(ctx.settings.model.path, ctx.dirs)
        row = registry.activate(args.model_id, base)
        print(f"active: model {row.id} ({plain(row.name)}); the app and `sleuth ask` use it now")
        return 0
    if not base.exists():
        print(
            f"base {plain(base.name)}: not prepared yet (it is joined into the cache the first "
            "time Sleuth runs it); no adapter has been trained over it"
        )
        return 0
    if args.action == "rollback":
        if args.reward:
            row = registry.rollback(base, "reward")
            if row is None:
                print("No reward model is active; there is nothing to roll back.")
            elif row.kind == "reward":
                print(f"rolled back: reward model {row.id} ({plain(row.name)}) is active again")
            else:
                print("rolled back: no reward model is active; the reader picks alone")
            return 0
        row = registry.rollback(base)
        if row is None:
            print("The base model is already active; there is nothing to roll back.")
        else:
            print(f"rolled back: model {row.id} ({plain(row.name)}) is active again")
        return 0
    fp = fingerprint(base)
    current = {registry.current(base, fp).id, getattr(registry.active_reward(fp), "id", None)}
    print(f"base {plain(base)} ({fp})")
    for row in store.registry.models(fp):
        mark = "*" if row.id in current else " "
        if row.kind == "reward":
            kind = "reward model" + (f" after {row.parent_id}" if row.parent_id else "")
            note = reward_summary(row.evaluation)
        else:
            kind = "base" if not row.adapter_path else f"adapter of {row.parent_id}"
            evaluation = Evaluation.from_dict(row.evaluation)
            note = f"  eval n={evaluation.n} {summary(evaluation)}" if summary(evaluation) else ""
        run = f"  run {row.training_run_id}" if row.training_run_id else ""
        print(f"{mark} {row.id:>3}  {plain(row.name):<18} {kind}{run}{note}")
    print("* active")
    return 0


def reward_summary(evaluation: dict | None) -> str:
    """A reward model's verdict on the user's own questions, in a few words."""
    check = (evaluation or {}).get("reward") or {}
    if not check.get("n"):
        return ""
    return (
        f"  own questions n={check['n']}: right {check['picked']:.0%} "
        f"(reader alone {check['reader']:.0%})"
    )
