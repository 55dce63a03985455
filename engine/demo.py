"""`motcua demo`: the embedded default, set up and shown. Loads the pre-2025 district organisation and
the post-2025 commune organisation, the procedure catalog, then drives sample dossiers through their
paths on a scripted clock (normal, supplement, inter-agency consultation, extension, refusal, stop, one
left in progress). Safe to run twice: organisation and catalog are upserted, the samples made once."""
from __future__ import annotations

import os
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from rich.console import Console
from sqlalchemy import func, select

from engine import dossiers as cmd
from engine.auth import hash_password
from engine.catalog import load_catalog
from engine.config import settings
from engine.db import session_scope
from engine.documents import ensure_dev_keys, issue_result
from engine.dossiers import rules_of
from engine.migrate import upgrade
from engine.models import Dossier, User
from engine.org import load_org_dir
from engine.timers import scan_all

VN = ZoneInfo("Asia/Ho_Chi_Minh")
# The sample applicants' IDs mark the sample dossiers, so a second run adds none.
DEMO_IDS = ("052190001234", "052088004321", "052095007777", "064199002468", "064087001357", "064190005501",
            "064185005502", "064178005503")


def at(*args) -> datetime:
    return datetime(*args, tzinfo=VN)


def run_demo(out: Console) -> None:
    s = settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade()
    ensure_dev_keys()           # the development key that signs electronic results (issue 4)
    with session_scope() as db:
        for name, units, users in load_org_dir(db, s.org_dir):
            out.print(f"organisation {name}: {units} units, {users} users")
        for row, created in load_catalog(db, s.catalog_dir, now=cmd.utcnow()):
            out.print(f"procedure {row.code} v{row.version} ({'new' if created else 'unchanged'}): {row.name}")
    with session_scope() as db:
        made = db.scalar(select(func.count(Dossier.id))
                         .where(Dossier.applicant["citizen_id"].as_string().in_(DEMO_IDS)))
    if made:
        out.print(f"sample dossiers already present ({made}); nothing added")
    else:
        for scenario in SCENARIOS:
            with session_scope() as db:
                code = scenario(db)
            out.print(f"sample dossier {code}")
    # The timers, as the in-process scheduler would run them now: the dossier left open is long overdue.
    fired = scan_all(now=cmd.utcnow())
    out.print(f"deadline scan: {fired.warnings} warnings, {fired.overdue} overdue, "
              f"{fired.accountability} accountability records")
    _summary(out)
    demo_passwords(out)
    indicator_samples(out)


def _users(db) -> dict[str, User]:
    return {u.username: u for u in db.scalars(select(User))}


def _components(db, code: str, on: datetime) -> list[str]:
    from engine.catalog import version_for
    rules = rules_of(version_for(db, code, on.date()))
    return [c["code"] for c in rules.components if c.get("required")]


def _applicant(name: str, cid: str) -> dict:
    return {"full_name": name, "citizen_id": cid, "phone": "0905123456", "address": "Bình Định"}


def certified_copy_same_day(db) -> str:
    """Phú Phong town, Thursday 24/4/2025: received 09:00, certified and returned the same day."""
    u, t = _users(db), at(2025, 4, 24, 9, 0)
    d = cmd.receive(db, actor=u["pp.motcua"], procedure_code="2.000815", now=t,
                    applicant=_applicant("Trần Thị Bích", "052190001234"),
                    components=_components(db, "2.000815", t)).dossier
    cmd.complete_step(db, code=d.code, actor=u["pp.cv"], decision="dat", note="Bản chính hợp lệ", now=at(2025, 4, 24, 9, 40))
    cmd.complete_step(db, code=d.code, actor=u["pp.ld"], decision="dong_y", now=at(2025, 4, 24, 10, 15))
    # The electronic result: rendered, signed with the unit's (development) key, filed to the citizen's store.
    issue_result(db, code=d.code, actor=u["pp.motcua"], now=at(2025, 4, 24, 10, 20))
    cmd.return_result(db, code=d.code, actor=u["pp.motcua"], now=at(2025, 4, 24, 10, 30))
    return d.code


def construction_permit(db) -> str:
    """Tây Sơn district, 15 working days: inter-agency consultation, a supplement, an extension."""
    u = _users(db)
    t = at(2025, 4, 24, 9, 30)
    d = cmd.receive(db, actor=u["ts.motcua"], procedure_code="XD.GPXD.01", now=t,
                    applicant=_applicant("Nguyễn Văn An", "052088004321"),
                    components=_components(db, "XD.GPXD.01", t)).dossier
    code = d.code
    cmd.claim(db, code=code, actor=u["ts.ktht.cv"], now=at(2025, 4, 25, 8, 0))
    cmd.complete_step(db, code=code, actor=u["ts.ktht.cv"], decision="lay_y_kien",
                      note="Cần ý kiến Sở Xây dựng về chỉ giới", now=at(2025, 5, 5, 9, 0))
    cmd.transfer(db, code=code, actor=u["ts.ktht.cv"], to_unit="BD-SXD", note="Liên thông lấy ý kiến",
                 now=at(2025, 5, 5, 9, 30))
    cmd.complete_step(db, code=code, actor=u["sxd.cv"], note="Thống nhất chỉ giới xây dựng", now=at(2025, 5, 8, 14, 0))
    cmd.request_supplement(db, code=code, actor=u["ts.ktht.cv"], missing=["Bản vẽ mặt bằng móng"],
                           note="Thiếu bản vẽ mặt bằng móng", now=at(2025, 5, 9, 10, 0))
    cmd.record_supplement(db, code=code, actor=u["ts.motcua"], note="Đã nộp bản vẽ", now=at(2025, 5, 14, 8, 0))
    cmd.complete_step(db, code=code, actor=u["ts.ktht.cv"], decision="dat", now=at(2025, 5, 15, 9, 0))
    cmd.complete_step(db, code=code, actor=u["ts.ktht.cv"], note="Hiện trạng phù hợp", now=at(2025, 5, 16, 15, 0))
    cmd.extend(db, code=code, actor=u["ts.ubnd.ld"], reason="Chờ ý kiến thống nhất của lãnh đạo UBND huyện",
               extra_working_days=3, now=at(2025, 5, 19, 9, 0))
    cmd.complete_step(db, code=code, actor=u["ts.ktht.ld"], decision="dong_y", now=at(2025, 5, 20, 9, 0))
    cmd.complete_step(db, code=code, actor=u["ts.ubnd.ld"], decision="dong_y", now=at(2025, 5, 22, 16, 0))
    cmd.return_result(db, code=code, actor=u["ts.motcua"], now=at(2025, 5, 23, 8, 0))
    return code


def birth_registration_refused(db) -> str:
    """Phú Phong: a birth registration refused (the leader approves the refusal; the counter returns it)."""
    u, t = _users(db), at(2025, 4, 24, 14, 0)
    d = cmd.receive(db, actor=u["pp.motcua"], procedure_code="1.001193", now=t,
                    applicant=_applicant("Phạm Văn Cường", "052095007777"),
                    components=_components(db, "1.001193", t)).dossier
    cmd.refuse(db, code=d.code, actor=u["pp.cv"], reason="Giấy chứng sinh không do cơ sở y tế cấp",
               now=at(2025, 4, 24, 14, 30))
    cmd.complete_step(db, code=d.code, actor=u["pp.ld"], decision="dong_y", now=at(2025, 4, 24, 15, 0))
    cmd.return_result(db, code=d.code, actor=u["pp.motcua"], now=at(2025, 4, 24, 15, 30))
    return d.code


def commune_in_progress(db) -> str:
    """Xã Tây Sơn (post-2025 commune centre): a birth registration claimed by the specialist and left
    waiting: long overdue by now, so the deadline scan gives it an accountability record."""
    u, t = _users(db), at(2025, 10, 14, 8, 15)
    d = cmd.receive(db, actor=u["xts.motcua"], procedure_code="1.001193", channel="online", now=t,
                    applicant=_applicant("Lê Thị Duyên", "064199002468"),
                    components=_components(db, "1.001193", t)).dossier
    cmd.claim(db, code=d.code, actor=u["xts.cv"], now=at(2025, 10, 14, 8, 30))
    return d.code


def commune_stopped(db) -> str:
    """Xã Tây Sơn: a certified copy stopped at the citizen's request (Circular 03/2025 stop notice)."""
    u, t = _users(db), at(2025, 10, 14, 9, 0)
    d = cmd.receive(db, actor=u["xts.motcua"], procedure_code="2.000815", now=t,
                    applicant=_applicant("Hà Văn Em", "064087001357"),
                    components=_components(db, "2.000815", t)).dossier
    cmd.stop(db, code=d.code, actor=u["xts.motcua"], reason="Công dân rút hồ sơ", now=at(2025, 10, 14, 9, 20))
    return d.code


def commune_worklist_today(db) -> str:
    """Xã Tây Sơn, today: three signature certifications waiting in the console's inboxes — one for the
    specialist (xts.cv), one for the leader (xts.ld), one to be returned at the counter (xts.motcua)."""
    u, now = _users(db), cmd.utcnow()
    applicants = [("Y Blang Niê", "064190005501"), ("Đinh Văn Hùng", "064185005502"), ("Rơ Châm Lý", "064178005503")]
    codes = []
    for i, (name, cid) in enumerate(applicants):
        t = now - timedelta(minutes=40 - 10 * i)
        # Submitted online (the public service portal takes them at any hour), checked by the counter.
        code = cmd.receive(db, actor=u["xts.motcua"], procedure_code="2.000884", now=t, channel="online",
                           applicant=_applicant(name, cid), components=_components(db, "2.000884", t)).dossier.code
        if i >= 1:
            cmd.complete_step(db, code=code, actor=u["xts.cv"], decision="dat", note="Chữ ký đúng mẫu",
                              now=t + timedelta(minutes=3))
        if i >= 2:
            cmd.complete_step(db, code=code, actor=u["xts.ld"], decision="dong_y", now=t + timedelta(minutes=6))
        codes.append(code)
    return ", ".join(codes)


def demo_passwords(out: Console) -> None:
    """Every user without a password gets the demo's password: random, generated on the first run into
    <data_dir>/demo-password.txt (readable by its owner only). Later runs reuse it and leave passwords
    already set alone (one an admin changed stays changed)."""
    path = settings().data_dir / "demo-password.txt"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)    # 0600 from the start
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(12) + "\n")
    with session_scope() as db:
        waiting = list(db.scalars(select(User).where(User.password_hash.is_(None))))
        if waiting:
            # One hash for all: they share the password anyway, and argon2 is slow on purpose.
            digest = hash_password(path.read_text().strip())
            for u in waiting:
                u.password_hash = digest
    out.print(f"đăng nhập bằng xts.motcua, xts.cv, xts.ld (việc hôm nay), ts.nv.gs, ts.admin… "
              f"(danh sách: motcua users list) / mật khẩu trong {path}")


SCENARIOS = [certified_copy_same_day, construction_permit, birth_registration_refused, commune_in_progress,
             commune_stopped, commune_worklist_today]


def _summary(out: Console) -> None:
    from rich.table import Table
    from engine.inspect import STATUS_VI
    table = Table(title="Hồ sơ mẫu")
    for col in ("Mã hồ sơ", "Thủ tục", "Trạng thái", "Tiếp nhận", "Hẹn trả", "Kết thúc"):
        table.add_column(col)
    with session_scope() as db:
        for d in db.scalars(select(Dossier).order_by(Dossier.id)):
            f = (lambda v: v.astimezone(VN).strftime("%d/%m/%Y %H:%M") if v else "")
            table.add_row(d.code, d.procedure_version.code, STATUS_VI.get(d.status, d.status), f(d.received_at),
                          f(d.due_at), f(d.finished_at))
    out.print(table)
    out.print(f"database: {settings().resolved_database_url()}  —  try: motcua dossier show <code>")


def indicator_samples(out: Console) -> None:
    """Records the indicators count (issue 6), on the sample dossiers: fees paid, satisfaction ratings,
    feedback, internal work files; then the district's indicators for the second quarter of 2025.
    Made once: skipped when the sample ratings are there."""
    from engine import feedback, payments, workfiles
    from engine.kpi import indicators, period_bounds
    from engine.models import Rating
    with session_scope() as db:
        u = _users(db)
        code = {cid: c for cid, c in db.execute(select(Dossier.applicant["citizen_id"].as_string(), Dossier.code)
                                                 .where(Dossier.applicant["citizen_id"].as_string().in_(DEMO_IDS)))}
        copy, permit = code.get("052190001234"), code.get("052088004321")
        if copy and permit and not db.scalar(select(func.count(Rating.id))):
            payments.record_payment(db, code=copy, actor=u["pp.motcua"], amount=2000, online=False,
                                    paid_at=at(2025, 4, 24, 9, 5), reference="BL-0001", now=at(2025, 4, 24, 9, 5))
            payments.record_payment(db, code=permit, actor=u["ts.motcua"], amount=75000, online=True,
                                    paid_at=at(2025, 4, 24, 9, 40), reference="VNPAY-250424-01",
                                    now=at(2025, 4, 24, 9, 45))
            feedback.rate(db, code=copy, rating="satisfied", via="counter", actor=u["pp.motcua"],
                          now=at(2025, 4, 24, 10, 35))
            feedback.rate(db, code=permit, rating="normal", comment="Phải bổ sung bản vẽ, chờ lâu",
                          now=at(2025, 5, 23, 9, 0))
            fb = feedback.file_feedback(db, dossier_code=permit, content="Hồ sơ bị hẹn lại ngày trả kết quả",
                                        sender_name="Nguyễn Văn An", sender_contact="0905123456",
                                        now=at(2025, 5, 26, 8, 0))
            feedback.answer_feedback(db, feedback_id=fb.id, actor=u["ts.ktht.ld"], now=at(2025, 6, 3, 9, 0),
                                     answer="Đơn vị đã xin lỗi và rút kinh nghiệm việc lấy ý kiến liên thông")
            feedback.file_feedback(db, unit_code="TS-TV", content="Đề nghị niêm yết thủ tục chứng thực rõ hơn",
                                   sender_name="Lê Thị Hoa (mẫu)", now=at(2025, 6, 2, 9, 0))
            for i, (unit, user, electronic) in enumerate([("TS-PP", "pp.ld", True), ("TS-PP", "pp.ld", True),
                                                          ("TS-PP", "pp.ld", False), ("TS-NV", "ts.nv.gs", True),
                                                          ("TS-NV", "ts.nv.gs", True)]):
                workfiles.record_work_file(db, unit_code=unit, electronic=electronic, title=f"Hồ sơ công việc mẫu {i + 1}",
                                           created_at=at(2025, 5, 5 + i, 8, 0), actor=u[user], now=at(2025, 5, 5 + i, 8, 0))
            out.print("indicator samples: 2 payments, 2 ratings, 2 feedback, 5 work files")
        start, end = period_bounds("2025-Q2")
        whole = indicators(db, unit_code="TS", start=start, end=end, group_by=None)[0]
    shown = ", ".join(f"{v.key} {v.numerator}/{v.denominator}" for v in whole.values.values() if v.denominator)
    out.print(f"indicators of TS, 2025-Q2: {shown}  —  try: motcua report kpi --unit TS --period 2025-Q2 --format xlsx")
