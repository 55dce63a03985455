"""A hand-built quarter (Q2 2025) of dossiers, payments, ratings, feedback and work files in the district of
Tây Sơn, driven through the real engine commands, whose indicators the tests compute by hand.

Office hours of the sample units: 07:00–11:30 and 13:30–17:00. Saturday 26/4/2025 is worked and Friday
2/5/2025 is off (the announced swap); 30/4 and 1/5 are holidays. The same-day procedures (certified copy
2.000815, signature certification 2.000884, birth registration 1.001193, marriage registration 1.000894)
are due 17:00 the day of receipt before their 15:00 cut-off.

| dossier | unit (handling) | procedure | channel | what happens | on time? |
|---|---|---|---|---|---|
| A | TS-PP | 2.000815 | counter | received 24/4 09:00, electronic result, returned 10:30; paid 2.000 đ at the counter; rated satisfied at the counter | yes |
| B | TS-PP | 1.001193 | online | received 24/4 09:10, TP1 TP2 uploaded, electronic result, returned 10:40; paid 8.000 đ online | yes |
| C | TS-PP | 2.000884 | counter | received 24/4 09:00, TP2 uploaded; supplement asked 10:00 (300 min left), brought Mon 28/4 08:00 → due 28/4 15:00; returned 28/4 14:00; paid online; rated satisfied | yes (its original 24/4 17:00 is missed, but the pause is the citizen's) |
| D | TS-PP | 2.000815 | counter | received 24/4 09:00; two supplement requests; returned 24/4 15:00, before its moved appointment | no: two supplement requests |
| E | TS-PP | 1.001193 | counter | received 25/4 08:00 (due 25/4 17:00) by B's applicant: TP1 reused from B, TP2 uploaded; returned Mon 28/4 08:00; paid at the counter; rated normal | no |
| F | TS-PP | 2.000815 | counter | received 24/4 09:00 (due 17:00), extended at 16:00 to 25/4 17:00, returned 25/4 10:00 | no: the extension is the unit's delay |
| G | TS-PP | 2.000815 | counter | received 24/4 09:00, stopped 09:30 at the citizen's request | excluded |
| H | TS-PP | 1.001193 | counter | received 24/4 14:00, refused, refusal returned 15:30 | yes |
| I | TS-TV | 2.000815 | online | received Fri 2/5 10:00 (a day off: due Mon 5/5 17:00), returned 5/5 09:00; paid online; rated not satisfied | yes |
| J | TS-KTHT | XD.GPXD.01 | counter (TS-VP) | received 24/4 09:30, TP1 of TP1–TP3 uploaded, paid online; still open | — |
| K | TS-PP | 2.000815 | counter | received Mon 31/3 16:00 (Q1; after the cut-off: due 1/4 17:00), returned 1/4 09:00 | yes |
| M | TS-PP | 1.000894 | counter | received 24/4 10:00 (no fee), TP1 uploaded; still open | — |
| N | TS-PP | 1.000894 | counter | received 24/4 10:30 with the optional TP2 (to digitize), only TP1 uploaded; open | — |

Feedback (15 working days): f1 about E, filed Mon 28/4 09:00 → due Thu 22/5 17:00, answered 20/5 (on time);
f2 about TS-TV, filed Mon 2/6 → due Mon 23/6, answered 25/6 (late); f3 about TS-PP, filed 16/6 → due 7/7
(not due in Q2); f4 about TS-PP, filed Mon 5/5 → due Mon 26/5, rejected 6/5 with a reason (on time).
Work files: TS-PP 3 electronic + 1 paper (and one electronic in March, outside Q2); TS-TV 1 + 1;
TS-NV (a department) 4 + 1.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pytest
from sqlalchemy import select

from engine import documents, feedback, payments, workfiles
from engine import dossiers as cmd
from engine.db import get_engine, session_factory
from engine.models import Base, User
from storage.objects import LocalStore
from tests.conftest import KEPT_TABLES, vn
from tests.documents_support import make_pdf

X = {"full_name": "Nguyễn Thị Hướng", "citizen_id": "052190001234", "address": "Phú Phong", "phone": "0905123456"}


def person(n: int) -> dict:
    return {"full_name": f"Trần Văn {chr(ord('A') + n)}", "citizen_id": f"0520880{n:05d}"}


@dataclass
class World:
    codes: dict[str, str] = field(default_factory=dict)
    feedback: dict[str, int] = field(default_factory=dict)


class Builder:
    def __init__(self, url: str, store_dir):
        self.db = session_factory(url, immediate=False)()
        self.users = {u.username: u for u in self.db.scalars(select(User))}
        self.store = LocalStore(store_dir)
        self.world = World()

    def do(self, fn, **kw):
        result = fn(self.db, **kw)
        self.db.commit()
        self.db.expunge_all()
        return result

    def receive(self, name, officer, procedure, components, at: datetime, applicant=None, channel="counter"):
        d = self.do(cmd.receive, actor=self.users[officer], procedure_code=procedure, components=components,
                    applicant=applicant or person(len(self.world.codes)), channel=channel, now=at).dossier
        self.world.codes[name] = d.code
        return d.code

    def act(self, fn, code, user, at, **kw):
        return self.do(fn, code=code, actor=self.users[user], now=at, **kw)

    def approve(self, code, at1, at2, cv="pp.cv", ld="pp.ld"):
        self.act(cmd.complete_step, code, cv, at1, decision="dat")
        self.act(cmd.complete_step, code, ld, at2, decision="dong_y")

    def upload(self, code, component, at, officer="pp.motcua", digitized=True):
        return self.act(documents.upload, code, officer, at, component=component, data=make_pdf(1),
                        store=self.store, digitized=digitized)

    def pay(self, code, amount, online, at, officer="pp.motcua", reference=None):
        self.act(payments.record_payment, code, officer, at, amount=amount, online=online, paid_at=at,
                 reference=reference)

    def work_files(self, unit, user, electronic, paper, at):
        for i in range(electronic + paper):
            self.do(workfiles.record_work_file, unit_code=unit, electronic=i < electronic, title=f"Hồ sơ công việc {i}",
                    created_at=at, actor=self.users[user], now=at)


def build(url: str, store_dir) -> World:
    b = Builder(url, store_dir)
    documents.ensure_dev_keys(now=vn(2025, 1, 2, 8, 0), force=True)

    a = b.receive("A", "pp.motcua", "2.000815", ["TP1"], vn(2025, 4, 24, 9, 0))
    b.pay(a, 2000, False, vn(2025, 4, 24, 9, 5))
    b.approve(a, vn(2025, 4, 24, 9, 30), vn(2025, 4, 24, 10, 0))
    b.act(documents.issue_result, a, "pp.motcua", vn(2025, 4, 24, 10, 10), store=b.store)
    b.act(cmd.return_result, a, "pp.motcua", vn(2025, 4, 24, 10, 30))
    b.do(feedback.rate, code=a, rating="satisfied", via="counter", actor=b.users["pp.motcua"],
         now=vn(2025, 4, 24, 10, 35))

    bb = b.receive("B", "pp.motcua", "1.001193", ["TP1", "TP2", "TP4"], vn(2025, 4, 24, 9, 10), applicant=X,
                   channel="online")
    b.pay(bb, 8000, True, vn(2025, 4, 24, 9, 11), reference="VNPAY-0001")
    tp1_of_b = b.upload(bb, "TP1", vn(2025, 4, 24, 9, 15), digitized=False)
    b.upload(bb, "TP2", vn(2025, 4, 24, 9, 16), digitized=False)
    b.approve(bb, vn(2025, 4, 24, 9, 40), vn(2025, 4, 24, 10, 10))
    b.act(documents.issue_result, bb, "pp.motcua", vn(2025, 4, 24, 10, 20), store=b.store)
    b.act(cmd.return_result, bb, "pp.motcua", vn(2025, 4, 24, 10, 40))

    c = b.receive("C", "pp.motcua", "2.000884", ["TP1", "TP2"], vn(2025, 4, 24, 9, 0))
    b.pay(c, 10000, True, vn(2025, 4, 24, 9, 2))
    b.upload(c, "TP2", vn(2025, 4, 24, 9, 5))
    b.act(cmd.request_supplement, c, "pp.cv", vn(2025, 4, 24, 10, 0), missing=["Văn bản cần ký"], note="Thiếu trang 2")
    b.act(cmd.record_supplement, c, "pp.motcua", vn(2025, 4, 28, 8, 0))
    b.approve(c, vn(2025, 4, 28, 9, 0), vn(2025, 4, 28, 10, 0))
    b.act(cmd.return_result, c, "pp.motcua", vn(2025, 4, 28, 14, 0))
    b.do(feedback.rate, code=c, rating="satisfied", now=vn(2025, 4, 29, 8, 0))

    d = b.receive("D", "pp.motcua", "2.000815", ["TP1"], vn(2025, 4, 24, 9, 0))
    b.act(cmd.request_supplement, d, "pp.cv", vn(2025, 4, 24, 9, 30), missing=["Bản chính"], note="Bản chính mờ")
    b.act(cmd.record_supplement, d, "pp.motcua", vn(2025, 4, 24, 13, 30))
    b.act(cmd.request_supplement, d, "pp.cv", vn(2025, 4, 24, 14, 0), missing=["Bản sao"], note="Thiếu bản sao")
    b.act(cmd.record_supplement, d, "pp.motcua", vn(2025, 4, 24, 14, 30))
    b.approve(d, vn(2025, 4, 24, 14, 40), vn(2025, 4, 24, 14, 50))
    b.act(cmd.return_result, d, "pp.motcua", vn(2025, 4, 24, 15, 0))

    e = b.receive("E", "pp.motcua", "1.001193", ["TP1", "TP2", "TP4"], vn(2025, 4, 25, 8, 0), applicant=X)
    b.pay(e, 8000, False, vn(2025, 4, 25, 8, 1))
    b.act(documents.attach, e, "pp.motcua", vn(2025, 4, 25, 8, 5), component="TP1", document_id=tp1_of_b.id)
    b.upload(e, "TP2", vn(2025, 4, 25, 8, 10))
    b.approve(e, vn(2025, 4, 25, 16, 0), vn(2025, 4, 25, 16, 30))
    b.act(cmd.return_result, e, "pp.motcua", vn(2025, 4, 28, 8, 0))
    b.do(feedback.rate, code=e, rating="normal", now=vn(2025, 4, 28, 9, 0))

    f = b.receive("F", "pp.motcua", "2.000815", ["TP1"], vn(2025, 4, 24, 9, 0))
    b.act(cmd.extend, f, "pp.ld", vn(2025, 4, 24, 16, 0), reason="Chờ xác minh bản chính", extra_working_days=1)
    b.approve(f, vn(2025, 4, 25, 8, 0), vn(2025, 4, 25, 9, 0))
    b.act(cmd.return_result, f, "pp.motcua", vn(2025, 4, 25, 10, 0))

    g = b.receive("G", "pp.motcua", "2.000815", ["TP1"], vn(2025, 4, 24, 9, 0))
    b.act(cmd.stop, g, "pp.motcua", vn(2025, 4, 24, 9, 30), reason="Công dân rút hồ sơ")

    h = b.receive("H", "pp.motcua", "1.001193", ["TP1", "TP2", "TP4"], vn(2025, 4, 24, 14, 0))
    b.act(cmd.refuse, h, "pp.cv", vn(2025, 4, 24, 14, 30), reason="Giấy chứng sinh không hợp lệ")
    b.act(cmd.complete_step, h, "pp.ld", vn(2025, 4, 24, 15, 0), decision="dong_y")
    b.act(cmd.return_result, h, "pp.motcua", vn(2025, 4, 24, 15, 30))

    i = b.receive("I", "tv.motcua", "2.000815", ["TP1"], vn(2025, 5, 2, 10, 0), channel="online")
    b.pay(i, 2000, True, vn(2025, 5, 2, 10, 1), officer="tv.motcua")
    b.approve(i, vn(2025, 5, 5, 8, 0), vn(2025, 5, 5, 8, 30), cv="tv.cv", ld="tv.ld")
    b.act(cmd.return_result, i, "tv.motcua", vn(2025, 5, 5, 9, 0))
    b.do(feedback.rate, code=i, rating="not_satisfied", comment="Phải chờ lâu", now=vn(2025, 5, 6, 8, 0))

    j = b.receive("J", "ts.motcua", "XD.GPXD.01", ["TP1", "TP2", "TP3"], vn(2025, 4, 24, 9, 30))
    b.upload(j, "TP1", vn(2025, 4, 24, 9, 40), officer="ts.motcua")
    b.pay(j, 75000, True, vn(2025, 4, 24, 9, 35), officer="ts.motcua")

    k = b.receive("K", "pp.motcua", "2.000815", ["TP1"], vn(2025, 3, 31, 16, 0))
    b.approve(k, vn(2025, 4, 1, 8, 0), vn(2025, 4, 1, 8, 30))
    b.act(cmd.return_result, k, "pp.motcua", vn(2025, 4, 1, 9, 0))

    m = b.receive("M", "pp.motcua", "1.000894", ["TP1", "TP4"], vn(2025, 4, 24, 10, 0))
    b.upload(m, "TP1", vn(2025, 4, 24, 10, 5))

    n = b.receive("N", "pp.motcua", "1.000894", ["TP1", "TP2", "TP4"], vn(2025, 4, 24, 10, 30))
    b.upload(n, "TP1", vn(2025, 4, 24, 10, 35))

    w = b.world.feedback
    w["f1"] = b.do(feedback.file_feedback, dossier_code=e, content="Trả kết quả trễ hẹn", sender_name=X["full_name"],
                   now=vn(2025, 4, 28, 9, 0)).id
    b.do(feedback.start_feedback, feedback_id=w["f1"], actor=b.users["pp.ld"], now=vn(2025, 4, 29, 8, 0))
    b.do(feedback.answer_feedback, feedback_id=w["f1"], actor=b.users["pp.ld"], answer="Đã xin lỗi công dân",
         now=vn(2025, 5, 20, 10, 0))
    w["f2"] = b.do(feedback.file_feedback, unit_code="TS-TV", content="Cán bộ không hướng dẫn", sender_name="Lê Văn Hòa",
                   now=vn(2025, 6, 2, 9, 0)).id
    b.do(feedback.answer_feedback, feedback_id=w["f2"], actor=b.users["tv.ld"], answer="Đã chấn chỉnh",
         now=vn(2025, 6, 25, 9, 0))
    w["f3"] = b.do(feedback.file_feedback, unit_code="TS-PP", content="Đề nghị thêm ghế chờ", sender_name="Hồ Thị Lan",
                   now=vn(2025, 6, 16, 9, 0)).id
    w["f4"] = b.do(feedback.file_feedback, unit_code="TS-PP", content="(không có nội dung cụ thể)",
                   sender_name="Ẩn danh", now=vn(2025, 5, 5, 9, 0)).id
    b.do(feedback.reject_feedback, feedback_id=w["f4"], actor=b.users["pp.ld"], reason="Không có nội dung cụ thể",
         now=vn(2025, 5, 6, 9, 0))

    b.work_files("TS-PP", "pp.ld", 3, 1, vn(2025, 5, 12, 9, 0))
    b.work_files("TS-PP", "pp.ld", 1, 0, vn(2025, 3, 15, 9, 0))
    b.work_files("TS-TV", "tv.ld", 1, 1, vn(2025, 5, 12, 9, 0))
    b.work_files("TS-NV", "ts.nv.gs", 4, 1, vn(2025, 6, 10, 9, 0))
    b.db.close()
    return b.world


def clear(url: str) -> None:
    """Empty what the world wrote (the organisation and catalog stay), as the `db` fixture does."""
    with get_engine(url).begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT_TABLES:
                conn.execute(table.delete())


# --- fixtures (loaded with pytest_plugins = ["tests.kpi_world"]) -------------------------------------

@pytest.fixture(scope="module")
def world(db_url, tmp_path_factory):
    """The quarter, built once per test module and removed after it."""
    clear(db_url)
    built = build(db_url, tmp_path_factory.mktemp("kpi-objects"))
    yield built
    clear(db_url)


@pytest.fixture(scope="module")
def s(world, db_url):
    session = session_factory(db_url, immediate=False)()
    yield session
    session.close()
