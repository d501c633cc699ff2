"""Writes a mautrix-telegram config for a local Synapse, from the example the
package ships: python telegram-config.py OUT HOMESERVER_URL DOMAIN PORT.
Used by the tests and the demo; the bridge then generates its registration
with `python -m mautrix_telegram -g`."""
import os
import sys

import mautrix_telegram
from ruamel.yaml import YAML

out, homeserver, domain, port = sys.argv[1:5]
yaml = YAML()
with open(os.path.join(os.path.dirname(mautrix_telegram.__file__), "example-config.yaml")) as f:
    config = yaml.load(f)
config["homeserver"]["address"] = homeserver
config["homeserver"]["domain"] = domain
config["appservice"]["address"] = f"http://127.0.0.1:{port}"
config["appservice"]["hostname"] = "127.0.0.1"
config["appservice"]["port"] = int(port)
config["appservice"]["database"] = "sqlite:mautrix-telegram.db"
config["bridge"]["permissions"] = {domain: "full", f"@admin:{domain}": "admin"}
# Fake credentials: the bridge starts and talks to Matrix without reaching Telegram.
config["telegram"]["api_id"] = 611335
config["telegram"]["api_hash"] = "d524b414d21f4d37f08684c1df41ac9c"
config["logging"]["handlers"]["file"]["filename"] = os.path.join(os.path.dirname(os.path.abspath(out)), "mautrix-telegram.log")
with open(out, "w") as f:
    yaml.dump(config, f)
