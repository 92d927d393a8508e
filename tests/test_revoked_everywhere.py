"""A message she deleted for everyone leaves the briefs and the staff notices not yet sent."""

from __future__ import annotations

import json
from pathlib import Path

from clinicflow.outbox import Outbox, OutMessage
from clinicflow.storage import DELETED, Store, connect, scrub_text

CHAT = "5511987651101@c.us"
SECRET = "oi meu nome é Carla, meu cpf é 123.456.789-00, quero falar com atendente"


def test_the_brief_of_her_hand_off_no_longer_quotes_it(tmp_path: Path) -> None:
    store = Store(tmp_path)
    brief = {
        "summary": f'Conversa; pediu uma pessoa. Última mensagem: "{SECRET}"',
        "last_messages": [f"Paciente: {SECRET}", "Assistente: Claro!"],
    }
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO messages (chat_id, direction, text, channel_message_id, at) "
            "VALUES (?, 'in', ?, 'm1', '2026-03-02T12:00:00Z')",
            (CHAT, SECRET),
        )
        conn.execute(
            "INSERT INTO handoffs (chat_id, reason, urgent, red_flags, brief, status, at) "
            "VALUES (?, 'human_request', 0, '[]', ?, 'open', '2026-03-02T12:00:00Z')",
            (CHAT, json.dumps(brief, ensure_ascii=False)),
        )
    assert store.revoke_message(CHAT, "m1", SECRET, "2026-03-02T12:00:04Z") == "revoked"
    [row] = store.query("SELECT brief FROM handoffs WHERE chat_id = ?", (CHAT,))
    assert "123.456.789-00" not in row["brief"]
    kept = json.loads(row["brief"])
    assert kept["last_messages"] == [f"Paciente: {DELETED}", "Assistente: Claro!"]
    store.close()


def test_held_staff_notices_of_that_turn_no_longer_quote_it(tmp_path: Path) -> None:
    outbox = Outbox(connect(tmp_path / "clinicflow.db"))
    notice = f"🔔 Nova conversa para a equipe\nÚltimas mensagens:\nPaciente: {SECRET}"
    with outbox.conn:
        outbox.insert([
            OutMessage("5511990000001@c.us", notice, "handoff_notice", "m1", ("m1",), 1e12),
            OutMessage("5511990000002@c.us", notice, "handoff_notice", "m1", ("m1",), 1e12),
            OutMessage("5511990000003@c.us", notice, "handoff_notice", "other", ("x",), 1e12),
        ])  # fmt: skip
    assert outbox.scrub_pending("m1", SECRET) == 2
    texts = [r[0] for r in outbox.conn.execute("SELECT text FROM outbox ORDER BY id")]
    assert [SECRET in t for t in texts] == [False, False, True]  # another turn's: untouched
    assert texts[0].endswith(f"Paciente: {DELETED}")


def test_short_texts_are_not_scrubbed_inside_other_words() -> None:
    assert scrub_text("Paciente: foi ótimo, oi", "oi") == "Paciente: foi ótimo, oi"
    assert scrub_text('{"a": "diz \\"olá mundo\\""}', 'diz "olá mundo"') == f'{{"a": "{DELETED}"}}'


def test_the_workspace_copy_kept_for_re_notifying_no_longer_quotes_it(tmp_path: Path) -> None:
    from clinicflow.staff.assignment import Assignments

    assignments = Assignments(connect(tmp_path / "clinicflow.db"))
    assignments.noticed(1, CHAT, True, f"Paciente: {SECRET}", 0.0)
    assignments.noticed(2, "5511900000009@c.us", True, f"Paciente: {SECRET}", 0.0)
    assignments.scrub(CHAT, SECRET)
    briefs = dict(assignments.conn.execute("SELECT handoff_id, brief FROM handoff_notices"))
    assert briefs == {1: f"Paciente: {DELETED}", 2: f"Paciente: {SECRET}"}  # hers only
