#!/usr/bin/env node
// OCPP 1.6J central system built on the Node `ocpp-rpc` package, for bench/run.sh's `peers` scenario.
//
// An RPCServer in strict mode (every request and answer validated against the OCPP 1.6 JSON
// schemas) that answers BootNotification, Heartbeat, StatusNotification and MeterValues from any
// charger id on ws://HOST:PORT/<prefix>/<id> (subprotocol ocpp1.6).
//
//     node node_ocpp_rpc_server.js [--host 127.0.0.1] [--port 19200]
'use strict';

const http = require('http');
const { RPCServer } = require('ocpp-rpc');

const HEARTBEAT_INTERVAL_S = 60;

function option(name, fallback) {
    const at = process.argv.indexOf(name);
    return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

async function main() {
    const host = option('--host', '127.0.0.1');
    const port = Number(option('--port', '19200'));
    const server = new RPCServer({ protocols: ['ocpp1.6'], strictMode: true });

    server.on('client', (client) => {
        client.handle('BootNotification', () => ({
            currentTime: new Date().toISOString(),
            interval: HEARTBEAT_INTERVAL_S,
            status: 'Accepted',
        }));
        client.handle('Heartbeat', () => ({ currentTime: new Date().toISOString() }));
        client.handle('StatusNotification', () => ({}));
        client.handle('MeterValues', () => ({}));
        client.on('error', () => {});
    });

    // Our own HTTP server only to get a connection backlog as deep as the other servers'.
    const httpServer = http.createServer({ noDelay: true }, (_req, res) => {
        res.statusCode = 404;
        res.end();
    });
    httpServer.on('upgrade', server.handleUpgrade);
    await new Promise((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen({ port, host, backlog: 4096 }, resolve);
    });
    console.log(`listening on ws://${host}:${port}/`);
    const stop = () => server.close({ code: 1001 }).then(() => httpServer.close(() => process.exit(0)));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}

main().catch((err) => {
    console.error(err);
    process.exit(1);
});
