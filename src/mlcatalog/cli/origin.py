"""Who runs a command, as the journal records it."""

import os
import pwd

from mlcatalog.auth.principal import Method
from mlcatalog.store.database import Origin


def cli_origin() -> Origin:
    """The operating system's account of the process (its uid), not $USER or $LOGNAME, which
    anyone can set; its client is the command line."""
    try:
        account = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without an entry in the password database
        account = f"uid-{os.getuid()}"
    return Origin(actor=f"cli:{account}", auth_method=Method.OS_ACCOUNT, client_address="cli")
