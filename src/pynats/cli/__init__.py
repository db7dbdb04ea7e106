"""`nats`: the NATS command-line tool, behaving like natscli, built on nats-py, click and rich.

The top of the package lists the nouns, one module each (a package when the noun has helpers),
as natscli's cli/ has one file per noun; ui/ is the toolkit they share. Every module is in this
map (tests/cli/test_cli_module_map.py fails when one is missing or one listed is gone):

    main.py                the entry point: the command tree (NOUNS), natscli's errors, exit codes
    __main__.py            `python -m pynats.cli`, the same as the console script

  Nouns
    account.py             `nats account info`: this connection's user, account and JetStream usage;
                           `backup` / `restore`: every stream, one backup directory each
    context.py             `nats context`: add, edit, select, show and check connection contexts
    counter.py             `nats counter` (`ctr`): get, incr, view and ls of ADR-49 counters
    errors.py              `nats errors`: ls, lookup and validate of the JS API error catalogue
    events.py              `nats events` (`event`, `e`): server and JetStream advisories, one
                           line (--short), a block, JSON or CloudEvents each
    latency.py             `nats latency`: publish on one server, receive through another, percentiles
    micro.py               `nats micro` (`service`): ls, info, stats and ping of ADR-32 services
    pub.py                 `nats pub`: publish to Core NATS or, with -J, to JetStream
    sub.py                 `nats sub`: print messages from subjects or from a stream
    request.py             `nats request`: send requests, print the replies
    reply.py               `nats reply`: answer requests (echo, a body template or a command)
    rtt.py                 `nats rtt`: PING/PONG round trips to every address of the server list
    top.py                 `nats top`: nats-top's screen of one server (VARZ, CONNZ) through
                           the system account
    trace.py               `nats trace`: publish with Nats-Trace-Dest, draw the servers' trace events
    bench/__init__.py      `nats bench` (exports register from commands.py)
    bench/commands.py      the bench command tree and flags, turning flags into a run
    bench/spec.py          BenchSpec (the checked flags) and how messages split across clients
    bench/runner.py        worker processes, the start barrier, progress counters, samples
    bench/core.py          pub / sub (raw protocol) and service request / serve
    bench/wire.py          the raw client protocol of bench pub and sub (parser, connection)
    bench/js.py            js pub sync / async / atomic, and the JetStream set-up of all JS modes
    bench/consume.py       js ordered / consume / fetch
    bench/get.py           js get sync / batch
    bench/kv.py            kv put / get
    bench/report.py        natscli's result block and CSV
    bench/progress.py      natscli's per-client progress bars
    bench/plot.py          --plot (matplotlib, optional)
    cheat/__init__.py      `nats cheat` (exports register from commands.py)
    cheat/commands.py      list, show and save the cheat sheets
    cheat/sheets.py        the cheat sheets themselves
    consumer/__init__.py   `nats consumer` (exports register from commands.py)
    consumer/commands.py   add, edit, ls, info, rm, next, report
    consumer/config.py     consumer configurations from flags, questions and files (FIELDS)
    consumer/render.py     consumer info screens and tables
    kv/__init__.py         `nats kv` (exports register from commands.py)
    kv/commands.py         buckets and keys: add, put, get, del, watch, history, ...
    kv/buckets.py          the streams behind KV and object buckets: listing, picking, creating
    kv/errors.py           nats.go's words for nats-py's KV and object store errors
    kv/render.py           bucket screens, key tables, watch lines
    obj/__init__.py        `nats object` (exports register from commands.py)
    obj/commands.py        object store buckets and objects: add, put, get, ls, watch, seal, ...
    obj/progress.py        byte progress of a transfer, and the file wrappers that feed it
    obj/render.py          bucket and object screens, contents table, watch lines
    server/__init__.py     `nats server` (exports register from commands.py)
    server/commands.py     ping, list, info through the system account
    server/report.py       `server report connections`: every connection of every server
    server/report_accounts.py `server report accounts` (per-account sums of every server's
                           connections); `account report connections|statistics`
    server/report_jetstream.py `server report jetstream`: every server's JSZ, the meta group
    server/run.py          `server run`: a local development pynats server and its contexts
    server/check.py        `server check`: its flags and the run of each check (natscli's
                           monitor package)
    server/check_core.py   the connection, server and credential checks; shared check helpers
    server/check_jetstream.py the jetstream, stream, consumer, kv and message checks
    server/check_result.py a check's outcome: nagios, json, prometheus and text renderings,
                           Nagios exit codes
    server/request.py      `server request`: varz, connz, jsz, healthz, ... from every server
    server/passwd.py       `server passwd` (mkpasswd): bcrypt hashes for the users block
    server/mapping.py      `server mappings`: a subject mapping tried locally
    stream/__init__.py     `nats stream` (exports register from commands.py)
    stream/commands.py     add, edit, copy, ls, info, report, rm, purge, get, rmm, view
    stream/backup.py       backup and restore over the network, in natscli's directory layout
    stream/api.py          JetStream API paging and pickers for streams and consumers; stream
                           name and metadata conventions (KV_, OBJ_, _nats.)
    stream/config.py       stream configurations from flags, questions and files (the FIELD tables)
    stream/diff.py         the `Differences (-old +new):` block of stream and consumer edit
    stream/render.py       stream info screens, tables, replication report, stored messages

  Toolkit (ui/)
    ui/__init__.py         (package docstring)
    ui/command.py          NatsGroup / NatsCommand: aliases, global flags on every command, help;
                           negatable(), json_flag(), force_flag(), apply_options()
    ui/options.py          global flags, env vars, Settings and `current_settings()` (flag > env >
                           context > default)
    ui/context_store.py    natscli's context files (~/.config/nats/context/NAME.json, context.txt)
    ui/gather.py           `gather_replies()`: one request, many answers (natscli's doReqAsync)
    ui/connect.py          `connection()` (bounded connect), `jetstream()`, `js_request()` for
                           $JS.API calls, `run_async()` for command bodies
    ui/errors.py           CliError (`nats: error: ...`, exit 1), ApiError, Fatal, nats-py wording
    ui/output.py           `out` / `out_raw` (stdout, flushed), `log` (stderr `HH:MM:SS msg`),
                           `print_json`, `go_json`, `paint`
    ui/parse.py            natscli durations (in ns, on pynats.gotime) and byte sizes (+ click
                           types DURATION, BYTE_SIZE), `-H K:V` headers, `K=V` metadata
    ui/humanize.py         1,234 / 1.9 KiB / natscli's 30.00s and 1d2h3m4s / local timestamps
    ui/table.py            `Table`: go-pretty rounded tables (md/csv/tsv via NATS_TABLE_FORMAT)
    ui/columns.py          `Columns`: info screens with right-aligned labels
    ui/prompt.py           ask / confirm / select / pick, `prompted()` — only with a TTY
    ui/jsconfig.py         JetStream configuration documents: flag-to-field tables (ConfigField),
                           --config files, $EDITOR, --validate / --output
    ui/messages.py         how received messages are printed; JetStream ack metadata
    ui/payload.py          bodies from arguments or stdin for pub and request
    ui/templates.py        the {{Count}} {{ID}} {{Random a b}} ... body templates
    ui/progress.py         one-line progress bar on stderr

Go durations and times come from `pynats.gotime` (durations are integer nanoseconds everywhere;
seconds only where asyncio or nats-py take them, with `_s` in the name).

Adding a noun (e.g. `stream`): write `register(root: NatsGroup)` that declares the group and
its verbs with `@root.group(...)` / `@group.command(..., aliases=[...])`; do the work in an
async function run with `run_async()`, talking to the server through `connection()`; build the
result as data, render it with `Table`/`Columns` or print it with `print_json` for `--json`;
raise `CliError` for anything the user can fix. Then add its `register` to `main.NOUNS` and
the module to the map above.
"""
