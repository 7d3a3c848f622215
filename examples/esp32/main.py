# MicroPython for an ESP32: read a sensor every INTERVAL_MS, keep each reading
# on flash with a sequence number until the gateway has it, and post them as
# NDJSON batches with the device's bearer token, backing off (with jitter)
# while the gateway or the Wi-Fi is away. Copy it with a config.py:
#
#   WIFI_SSID = "..."; WIFI_PASSWORD = "..."
#   GATEWAY_URL = "http://192.168.1.10:8080/readings"
#   TOKEN = "the token the gateway has for this device"
#
# Why a re-sent reading is never stored twice: each carries `seq`, and the
# gateway stores it under <device>/<seq>; a batch whose answer was lost is
# sent again and counted as duplicates. `seq` only grows, across reboots:
# it is reserved on flash in blocks (SEQ_BLOCK), so a reboot skips the rest
# of a block rather than reusing a number.
#
# Flash layout: buffer.ndjson (readings, oldest first), sent.txt (how many
# bytes of it the gateway acknowledged), seq.txt (the reserved seq mark).

import json
import os
import time

import machine
import urequests

try:
    import random

    def jitter():
        return random.getrandbits(16) / 65536
except ImportError:  # a build without random
    def jitter():
        return 0.5

try:
    import config
except ImportError:
    config = None


def setting(name, default):
    return getattr(config, name, default)


GATEWAY_URL = setting("GATEWAY_URL", "http://192.168.1.10:8080/readings")
TOKEN = setting("TOKEN", "")
INTERVAL_MS = setting("INTERVAL_MS", 10_000)
BATCH = setting("BATCH", 50)  # readings per POST
BACKOFF_MS = setting("BACKOFF_MS", 1_000)
BACKOFF_MAX_MS = setting("BACKOFF_MAX_MS", 300_000)
MAX_BUFFER_BYTES = setting("MAX_BUFFER_BYTES", 512 * 1024)
SEQ_BLOCK = setting("SEQ_BLOCK", 100)
SENSOR_PIN = setting("SENSOR_PIN", 34)
MAX_READINGS = setting("MAX_READINGS", None)  # tests: stop once this many are sent

BUFFER = "buffer.ndjson"
SENT = "sent.txt"
SEQ = "seq.txt"


def read_int(path, default):
    try:
        with open(path) as f:
            return int(f.read().strip() or default)
    except (OSError, ValueError):
        return default


def write_int(path, value):
    # Write aside, then rename: a reset mid-write leaves the old value.
    with open(path + ".tmp", "w") as f:
        f.write(str(value))
    os.rename(path + ".tmp", path)


def size_of(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


class Sequence:
    """Numbers that only grow, reserved on flash SEQ_BLOCK at a time."""

    def __init__(self):
        self.next = read_int(SEQ, 0) + 1
        self.limit = self.next - 1

    def take(self):
        if self.next > self.limit:
            self.limit = self.next + SEQ_BLOCK - 1
            write_int(SEQ, self.limit)
        n = self.next
        self.next += 1
        return n


class Buffer:
    """Readings on flash, sent in order; `sent` bytes of it are acknowledged."""

    def __init__(self):
        self.sent = read_int(SENT, 0)

    def append(self, reading):
        if size_of(BUFFER) >= MAX_BUFFER_BYTES:
            return False  # full: the newest reading is not kept
        with open(BUFFER, "a") as f:
            f.write(json.dumps(reading) + "\n")
        return True

    def pending(self):
        return size_of(BUFFER) > self.sent

    def batch(self, count):
        lines = []
        with open(BUFFER) as f:
            f.seek(self.sent)
            while len(lines) < count:
                line = f.readline()
                if not line:
                    break
                if not line.endswith("\n"):
                    break  # torn by a reset: the rest of it never came
                lines.append(line)
        return lines

    def acknowledge(self, lines):
        self.sent += sum(len(line.encode()) for line in lines)
        if self.sent >= size_of(BUFFER):
            # Everything is at the gateway: start a new, empty buffer.
            try:
                os.remove(BUFFER)
            except OSError:
                pass
            self.sent = 0
        write_int(SENT, self.sent)


def read_sensor(adc):
    raw = adc.read_u16()
    # An analog temperature sensor (e.g. TMP36 on 3.3 V): mV -> degrees C.
    millivolts = raw * 3300 / 65535
    return {"raw": raw, "temp": round((millivolts - 500) / 10, 2)}


def post(lines):
    """POSTs a batch; returns (status, retry_after_ms) or (None, None) offline."""
    try:
        response = urequests.post(
            GATEWAY_URL,
            data="".join(lines),
            headers={
                "Authorization": "Bearer " + TOKEN,
                "Content-Type": "application/x-ndjson",
            },
        )
    except OSError:
        return None, None
    try:
        headers = getattr(response, "headers", None) or {}
        after = None
        for name in headers:
            if name.lower() == "retry-after":
                try:
                    after = int(headers[name]) * 1000
                except ValueError:
                    pass
        return response.status_code, after
    finally:
        response.close()


def connect_wifi():
    try:
        import network
    except ImportError:
        return  # not on a board (the tests)
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        wlan.connect(setting("WIFI_SSID", ""), setting("WIFI_PASSWORD", ""))


def main():
    connect_wifi()
    adc = machine.ADC(machine.Pin(SENSOR_PIN))
    seq = Sequence()
    buffer = Buffer()
    batch_size = BATCH
    taken = 0
    backoff = 0
    next_reading = time.ticks_ms()
    next_send = next_reading
    while True:
        now = time.ticks_ms()
        if (MAX_READINGS is None or taken < MAX_READINGS) and time.ticks_diff(now, next_reading) >= 0:
            reading = read_sensor(adc)
            reading["seq"] = seq.take()
            buffer.append(reading)
            taken += 1
            next_reading = time.ticks_add(next_reading, INTERVAL_MS)
        if buffer.pending() and time.ticks_diff(now, next_send) >= 0:
            lines = buffer.batch(batch_size)
            status, after = post(lines) if lines else (200, None)
            if status == 200:
                buffer.acknowledge(lines)
                backoff = 0
                batch_size = BATCH
                next_send = now  # more may wait: send again at once
                continue
            if status == 413 and batch_size > 1:
                batch_size = max(1, batch_size // 2)
                continue
            if status in (400, 409):
                # The gateway will never take these (a bug here): skip them
                # rather than block every later reading.
                print("gateway refused a batch:", status)
                buffer.acknowledge(lines)
                continue
            # Offline, 401, 429, 5xx: wait, longer each time, and try again.
            backoff = min(BACKOFF_MAX_MS, backoff * 2 if backoff else BACKOFF_MS)
            wait = int(backoff / 2 + jitter() * backoff / 2)
            if after is not None:
                wait = max(wait, after)
            next_send = time.ticks_add(now, wait)
        elif MAX_READINGS is not None and taken >= MAX_READINGS and not buffer.pending():
            return taken
        waits = [INTERVAL_MS]
        if MAX_READINGS is None or taken < MAX_READINGS:
            waits.append(time.ticks_diff(next_reading, now))
        if buffer.pending():
            waits.append(time.ticks_diff(next_send, now))
        time.sleep_ms(max(1, min(waits)))


if __name__ == "__main__":
    main()
