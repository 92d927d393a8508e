"""The secretaries' workspace: accounts, sessions, assignment, audit, the inbox page.

- :mod:`~clinicflow.staff.accounts`: people with a role, hashed passwords, API tokens;
- :mod:`~clinicflow.staff.sessions`: cookie sessions with CSRF tokens, the login throttle;
- :mod:`~clinicflow.staff.assignment`: who holds each conversation, duty, notices;
- :mod:`~clinicflow.staff.audit`: who did what, when;
- :mod:`~clinicflow.staff.desk`: the rules that put those together;
- :mod:`~clinicflow.staff.transcript`: one conversation as the secretary reads it;
- :mod:`~clinicflow.staff.events`: live updates for the page (server-sent events);
- :mod:`~clinicflow.staff.pages`: the server-rendered HTML of ``/login`` and ``/inbox``.

The runner serves them (``clinicflow.runner.workspace``).
"""
