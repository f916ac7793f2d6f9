"""`sleuth config`: the effective settings with where each came from, and setting one."""

from __future__ import annotations

import json

from sleuth.store.settings import save_setting, setting_help, template

from .context import Context


def add_commands(command) -> None:
    p = command("config", cmd_config, "Show the effective settings and where each came from.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--template", action="store_true", help="print config.toml's template: every setting"
    )
    config_sub = p.add_subparsers(metavar="ACTION")
    p_set = config_sub.add_parser("set", help="write one setting to the config file")
    p_set.add_argument("key")
    p_set.add_argument("value")
    p_set.set_defaults(handler=cmd_config_set)


def cmd_config(ctx: Context) -> int:
    if ctx.args.template:
        print(template(), end="")
        return 0
    items = ctx.settings.items()
    if ctx.args.json:
        print(json.dumps({k: {"value": v, "origin": o} for k, v, o in items}, indent=2))
        return 0
    width = max(len(k) for k, _, _ in items)
    for key, value, origin in items:
        print(f"{key:<{width}} = {json.dumps(value):<28} ({origin})")
    state = "exists" if ctx.dirs.config_file.exists() else "not created yet"
    print(f"\nconfig file: {ctx.dirs.config_file} ({state})")
    print(f"data: {ctx.dirs.data}\ncache: {ctx.dirs.cache}")
    print("Set one with `sleuth config set KEY VALUE` or the SLEUTH_<SECTION>_<KEY> variable.")
    return 0


def cmd_config_set(ctx: Context) -> int:
    key, value = ctx.args.key, ctx.args.value
    save_setting(ctx.dirs.config_file, key, value)
    print(f"{key} = {value}  written to {ctx.dirs.config_file}")
    print(f"  {setting_help(key)}")
    return 0
