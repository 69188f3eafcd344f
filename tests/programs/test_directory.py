"""The community programs directory: read by every signed-in role, kept by admins."""

from __future__ import annotations


def test_the_directory_is_read_by_all_and_written_by_admins(program, coach, admin):
    otp = program(name="Harbor OTP", service="otp", accepting_patients=True)
    program(name="Full House", service="recovery_housing", accepting_patients=False)
    names = lambda q: [p["name"] for p in coach.get(f"/api/v1/programs?{q}").get_json()["items"]]  # noqa: E731
    assert names("service=otp") == ["Harbor OTP"]
    assert "Full House" not in names("accepting_patients=true")
    assert coach.post("/api/v1/programs", json={"name": "x", "service": "otp", "accepting_patients": True,
                                                "external": True}).status_code == 403
    etag = admin.get(f"/api/v1/programs/{otp['id']}").headers["ETag"]
    changed = admin.patch(f"/api/v1/programs/{otp['id']}", json={"accepting_patients": False},
                          headers={"If-Match": etag})
    assert changed.status_code == 200 and changed.get_json()["accepting_patients"] is False
