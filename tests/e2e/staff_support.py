"""The staff member of the staff-console tests on a real stack: a superuser with a token."""

from __future__ import annotations

import subprocess
import sys
import uuid

from chatclient.client import ChatClient
from tests.support.stack import REPO, Stack

PASSWORD = "correct horse battery staple 42"


def superuser_client(stack: Stack) -> ChatClient:
    email = f"root-{uuid.uuid4().hex[:10]}@example.com"
    create = (
        f"from accounts.models import User; User.objects.create_superuser({email!r}, {PASSWORD!r})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", create],
        cwd=REPO,
        env=stack.env,
        check=True,
    )
    client = ChatClient(stack.base_url)
    client.login(email, PASSWORD)
    return client
