"""`nats`: the NATS command-line tool, behaving like natscli, built on nats-py, click and rich.

Map of the package (shared pieces first, then one module per noun):

    main.py          entry point, NOUN_MODULES, natscli's error/exit conventions
    command.py       NatsGroup / NatsCommand: aliases, global flags on every command, help,
                     `negatable()`, `json_flag()`, `force_flag()`
    options.py       global flags, env vars, Settings and `current_settings()` (flag > env >
                     context > default)
    connect.py       `connection()` (bounded connect), `jetstream()`, `jetstream_manager()`,
                     `js_request()` for raw $JS.API calls, `run_async()` for command bodies
    context_store.py natscli's context files (~/.config/nats/context/NAME.json, context.txt)
    errors.py        CliError (`nats: error: ...`, exit 1), Fatal (log line, exit 1)
    output.py        `out` / `out_raw` (stdout, flushed), `log` (stderr `HH:MM:SS msg`),
                     `print_json`, `paint`
    parse.py         natscli durations and byte sizes (+ click types DURATION, BYTE_SIZE),
                     `-H K:V` headers, `--metadata K=V`
    humanize.py      1,234 / 1.9 KiB / 30.00s / 2m0s / local timestamps
    table.py         `Table`: go-pretty rounded tables (md/csv/tsv via NATS_TABLE_FORMAT)
    columns.py       `Columns`: info screens with right-aligned labels
    prompt.py        ask / confirm / select / pick — only with a TTY on stdin and stdout
    templates.py     the {{Count}} {{ID}} {{Random a b}} ... body templates
    messages.py      how received messages are printed; JetStream ack metadata
    payload.py       bodies from arguments or stdin for pub/request
    progress.py      one-line progress bar on stderr

    context.py pub.py sub.py request.py reply.py server.py account.py cheat.py (+ cheat_sheets)

Adding a noun (e.g. `stream.py`): write `register(root: NatsGroup)` that declares the group and
its verbs with `@root.group(...)` / `@group.command(..., aliases=[...])`; do the work in an
async function run with `run_async()`, talking to the server through `connection()`; build the
result as data, render it with `Table`/`Columns` or print it with `print_json` for `--json`;
raise `CliError` for anything the user can fix. The module name is already in
`main.NOUN_MODULES`, so it is picked up as soon as the file exists.
"""
