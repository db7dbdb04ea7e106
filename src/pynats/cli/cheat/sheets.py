"""The cheat sheets `nats cheat LABEL` prints: one `# what it does` line, then the command.

Written for pynats in the format of the `cheat` tool that natscli's sheets use, so
`nats cheat --save DIR` produces files that tool can read. Keep one example per line and a
blank line between examples; every noun of the CLI has a sheet.
"""

from __future__ import annotations

CHEATS: dict[str, str] = {
    "account": """\
# Show who you are connected as, the server you reached and your JetStream usage and limits
nats account info

# The same through a saved context
nats account info --context prod

# Every connection of your account, on every server, busiest subscribers last
nats account report connections --sort subs

# Your account's connections, subscriptions and traffic on each server
nats account report statistics""",
    "bench": """\
# Measure core publish throughput with 2 publishing clients and no progress bars
nats bench pub demo.bench --msgs 1000000 --clients 2 --no-progress

# Measure subscribers: start them first, then publish from another terminal
nats bench sub demo.bench --clients 4 --msgs 500000
nats bench pub demo.bench --msgs 500000

# Publish at a fixed rate for one minute (messages = rate x duration)
nats bench pub demo.bench --throughput 10000 --duration 1m

# Request/reply latency: run the service, then the requester
nats bench service serve demo.svc --clients 4
nats bench service request demo.svc --msgs 10000

# JetStream publishing into a fresh file stream, synchronously and with async batches
nats bench js pub sync demo.js --create --purge --msgs 100000
nats bench js pub async demo.js --create --batch 500 --storage memory

# JetStream consumers reading what was published
nats bench js ordered --msgs 100000
nats bench js fetch --batch 500 --msgs 100000

# Key-Value puts and gets, saving the results as CSV
nats bench kv put --msgs 10000 --csv kv-put.csv
nats bench kv get --msgs 10000 --randomize 10000""",
    "consumer": """\
# Create a pull consumer answering every question with a default
nats consumer add ORDERS PROCESSOR --pull --defaults

# Create a push consumer delivering new messages to a subject, acknowledging each one
nats consumer add ORDERS MONITOR --target monitor.orders --deliver new --ack explicit --defaults

# List the consumers of a stream, and show one of them
nats consumer ls ORDERS
nats consumer info ORDERS PROCESSOR

# Fetch and acknowledge the next 10 messages of a pull consumer
nats consumer next ORDERS PROCESSOR --count 10

# Change what a consumer allows without recreating it
nats consumer edit ORDERS PROCESSOR --max-pending 500

# Remove a consumer without being asked
nats consumer rm ORDERS PROCESSOR -f""",
    "context": """\
# Save the connection settings of a server as a context and make it the default
nats context add local --server nats://127.0.0.1:4222 --description "Local server" --select

# Save a context that logs in with a credentials file
nats context add prod --server nats://nats.example.net:4222 --creds ~/.nats/prod.creds

# List the saved contexts, the selected one is marked with *
nats context ls

# Show a context and check that it can connect
nats context info prod --connect

# Switch the default context, or pick one from a list
nats context select prod
nats context select

# Use another context for one command only
nats stream ls --context local

# Change a context in your editor, then check every context
nats context edit prod
nats context validate

# Remove a context
nats context rm local -f""",
    "kv": """\
# Create a bucket keeping 5 revisions of every key
nats kv add CONFIG --history 5

# Store values, from an argument or from stdin
nats kv put CONFIG db.host db01.internal
echo -n 5432 | nats kv put CONFIG db.port

# Read a value, or only its bytes for scripts
nats kv get CONFIG db.host
nats kv get CONFIG db.host --raw

# Show every revision of a key
nats kv history CONFIG db.host

# List buckets, then the keys of one bucket
nats kv ls
nats kv ls CONFIG

# Follow changes to keys under db. as they happen
nats kv watch CONFIG 'db.>'

# Delete a key, then the whole bucket
nats kv del CONFIG db.port -f
nats kv del CONFIG -f""",
    "object": """\
# Create an object store bucket
nats object add FILES

# Store a file, or stdin under a name
nats object put FILES ./report.pdf
tar cz ./logs | nats object put FILES --name logs.tgz

# List the objects of a bucket and show one of them
nats object ls FILES
nats object info FILES report.pdf

# Fetch an object into a file
nats object get FILES report.pdf --output /tmp/report.pdf

# Delete an object, seal the bucket against changes
nats object del FILES report.pdf -f
nats object seal FILES -f""",
    "publish": """\
# Publish one message
nats pub orders.new '{"id":1}'

# Publish 100 numbered messages with a unique header each, half a second apart
nats pub orders.new 'order {{Count}}' --count 100 --sleep 500ms -H Trace-Id:{{ID}}

# Publish random text between 10 and 100 characters long
nats pub demo.noise '{{Random 10 100}}' --count 10

# Publish the contents of a file, or one message per line of input
cat order.json | nats pub orders.new
tail -f app.log | nats pub logs.app --send-on newline

# Publish into a stream and wait for JetStream to confirm it stored the message
nats pub -J ORDERS.new '{"id":2}'""",
    "reply": """\
# Answer every request on a subject with a fixed text
nats reply svc.hello 'hello from {{Time}}'

# Echo requests back, waiting up to 100ms at random before each reply
nats reply svc.echo --echo --sleep 100ms

# Answer with a program's output; {{2}} is the third token of the request subject (the city)
nats reply 'svc.weather.*' --command 'curl -s wttr.in/{{2}}?format=3'

# Handle 10 requests, then stop
nats reply svc.once 'done' --count 10""",
    "request": """\
# Send a request and print the reply with its round trip time
nats request svc.time ''

# Send a request with a header and print only the reply body
nats req svc.lookup '{"id":7}' -H Content-Type:application/json --raw

# Collect every reply that arrives within the timeout
nats req svc.discover '' --replies 0 --timeout 2s

# Send 5 numbered requests, one after the other
nats req svc.count 'request {{Count}}' --count 5""",
    "server": """\
# Check which servers answer, and how fast (needs a system account user)
nats server ping --context system

# List every server with its connections, memory and uptime
nats server list --context system

# Show the details of one server, by name or by its 56-character ID
nats server info nats-1 --context system

# The raw statistics of every server, for scripts
nats server list --json --context system

# Connections, messages and bytes per account, the 5 with the most inbound messages
nats server report accounts --sort in-msgs --top 5 --context system

# The connections of one account only
nats server report accounts ORDERS --context system

# Streams, consumers, messages and API use of every JetStream server, and the meta group
nats server report jetstream --context system
nats server report jetstream --account ORDERS --sort msgs --context system

# A local development server with JetStream, and contexts for its user, service and system users
nats server run --jetstream
nats server run demo --port 4222 --clean""",
    "stream": """\
# Create a stream for every subject under ORDERS, answering every question with a default
nats stream add ORDERS --subjects 'ORDERS.>' --defaults

# Create a memory stream keeping at most 1 hour and 1GB of messages
nats stream add EVENTS --subjects 'events.>' --storage memory --max-age 1h --max-bytes 1GB --defaults

# List streams and show one of them, as a screen or as JSON
nats stream ls
nats stream info ORDERS
nats stream info ORDERS --json

# Read a stored message by sequence, or the last one of a subject
nats stream get ORDERS 12
nats stream get ORDERS --last-for ORDERS.new

# Remove one message, or purge a subject, keeping the newest 10
nats stream rmm ORDERS 12 -f
nats stream purge ORDERS --subject ORDERS.old --keep 10 -f

# Change limits of an existing stream, showing the difference first
nats stream edit ORDERS --max-msgs 100000 --dry-run

# Delete a stream without being asked
nats stream rm ORDERS -f""",
    "subscribe": """\
# Print every message on subjects under orders, with headers and a counter
nats sub 'orders.>'

# Share the work with other subscribers of the same queue group
nats sub orders.new --queue workers

# Print only the bodies, for other programs, and stop after 10 messages
nats sub orders.new --raw --count 10 | jq .

# Save each message as a JSON file, or as NUL-terminated JSON for xargs
nats sub orders.new --dump ./messages
nats sub orders.new --dump - | xargs -0 -n 1 echo

# Subscribe to a fresh inbox and print it, to point replies at it
nats sub --inbox

# Read a stream from its first message, the last hour, or only new messages
nats sub --stream ORDERS --all
nats sub ORDERS.new --since 1h
nats sub ORDERS.new --new

# Stop once everything stored in the stream was printed
nats sub --stream ORDERS --all --terminate-at-end""",
}

ALIASES = {
    "obj": "object",
    "pub": "publish",
    "sub": "subscribe",
    "req": "request",
    "ctx": "context",
    "contexts": "context",
}
