"""What the user said about answers: ratings (thumbs, stars, a comment, a correction) and
comparisons."""

from __future__ import annotations

from .database import Database
from .errors import NotFound, StoreError
from .rows import Comparison, FeedbackCounts, RatedAnswer, Rating, ReaderChoice

MAX_CORRECTION = 20_000  # characters: an answer, not a document


class Feedback:
    def __init__(self, db: Database):
        self.db = db

    def _require_answer(self, answer_id: int) -> None:
        if self.db.scalar("SELECT 1 FROM answers WHERE id = ?", [answer_id]) is None:
            raise NotFound(f"There is no answer {answer_id}: `sleuth history` lists the ids.")

    def rate(
        self,
        answer_id: int,
        *,
        thumb: int | None = None,
        stars: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
    ) -> Rating:
        """Set (or change) the rating of an answer; fields left None keep their value. A
        correction is what the user says the right answer was; an empty one removes it."""
        if thumb is not None and thumb not in (-1, 1):
            raise StoreError("A thumb is +1 (up) or -1 (down).")
        if stars is not None and not 1 <= stars <= 5:
            raise StoreError(f"Stars go from 1 to 5, not {stars}.")
        if correction is not None:
            correction = correction.strip()
            if len(correction) > MAX_CORRECTION:
                raise StoreError(
                    f"A correction is at most {MAX_CORRECTION:,} characters, not "
                    f"{len(correction):,}."
                )
        self._require_answer(answer_id)
        at = self.db.clock()
        with self.db.write():
            existing = self.db.execute(
                "SELECT id FROM ratings WHERE answer_id = ?", [answer_id]
            ).fetchone()
            if existing is None:
                self.db.insert(
                    "ratings",
                    {
                        "answer_id": answer_id,
                        "thumb": thumb,
                        "stars": stars,
                        "comment": comment,
                        "correction": correction or None,
                        "created_at": at,
                        "updated_at": at,
                    },
                )
            else:
                changes = {"thumb": thumb, "stars": stars, "comment": comment}
                changes = {k: v for k, v in changes.items() if v is not None}
                if correction is not None:
                    changes["correction"] = correction or None
                self.db.utils["ratings"].update(existing[0], {**changes, "updated_at": at})
        rating = self.rating(answer_id)
        assert rating is not None
        return rating

    def clear_rating(self, answer_id: int) -> None:
        """Remove an answer's rating (the undo of a mistaken key press)."""
        with self.db.write():
            self.db.execute("DELETE FROM ratings WHERE answer_id = ?", [answer_id])

    def rating(self, answer_id: int) -> Rating | None:
        """The rating of an answer, or None."""
        return self.db.first(Rating, "SELECT * FROM ratings WHERE answer_id = ?", [answer_id])

    def compare(self, winner_id: int, loser_id: int, *, tie: bool = False) -> int:
        """Record that `winner_id` beat `loser_id` (or tied with it), replacing an earlier
        verdict on the same pair; returns the comparison id."""
        if winner_id == loser_id:
            raise StoreError("A comparison needs two different answers.")
        self._require_answer(winner_id)
        self._require_answer(loser_id)
        with self.db.write():
            self.db.execute(
                "DELETE FROM comparisons WHERE (winner_id = ? AND loser_id = ?) "
                "OR (winner_id = ? AND loser_id = ?)",
                [winner_id, loser_id, loser_id, winner_id],
            )
            return self.db.insert(
                "comparisons",
                {
                    "winner_id": winner_id,
                    "loser_id": loser_id,
                    "tie": int(tie),
                    "created_at": self.db.clock(),
                },
            )

    def comparisons(self) -> list[Comparison]:
        """Every comparison, oldest first."""
        return self.db.query(Comparison, "SELECT * FROM comparisons ORDER BY id")

    def comparisons_for(self, answer_id: int) -> list[Comparison]:
        """Comparisons an answer took part in."""
        return self.db.query(
            Comparison,
            "SELECT * FROM comparisons WHERE winner_id = ? OR loser_id = ? ORDER BY id",
            [answer_id, answer_id],
        )

    def rated_answers(self) -> list[RatedAnswer]:
        """Every answer with its rating (None where unrated), oldest first; its text is what
        the model wrote to its prompt."""
        return self.db.query(
            RatedAnswer,
            # What the model wrote to the prompt: the short answer the reader read off the
            # evidence (the shown text quotes the sources under it), else the whole answer.
            "SELECT answers.id AS answer_id, answers.run_id, runs.turn_id, answers.messages, "
            "COALESCE(answers.short_answer, answers.text) AS text, "
            "COALESCE(json_extract(answers.verification, '$.answer') = 'read', 0) AS reads, "
            "ratings.thumb, ratings.stars, ratings.correction FROM answers "
            "JOIN runs ON runs.id = answers.run_id "
            "LEFT JOIN ratings ON ratings.answer_id = answers.id ORDER BY answers.id",
        )

    def reader_choices(self) -> list[ReaderChoice]:
        """Every answer whose reader kept its candidates, with its rating (None where
        unrated), oldest first."""
        return self.db.query(
            ReaderChoice,
            "SELECT answers.id AS answer_id, runs.turn_id, "
            "json_extract(answers.verification, '$.candidates') AS candidates, "
            "json_extract(answers.verification, '$.shown') AS shown, "
            "ratings.thumb, ratings.stars, ratings.correction FROM answers "
            "JOIN runs ON runs.id = answers.run_id "
            "LEFT JOIN ratings ON ratings.answer_id = answers.id "
            "WHERE json_array_length(answers.verification, '$.candidates') > 0 "
            "ORDER BY answers.id",
        )

    def counts(self) -> FeedbackCounts:
        """How much feedback exists: what the trainer and the Train screen start from."""
        counts = self.db.first(
            FeedbackCounts,
            "SELECT (SELECT COUNT(*) FROM answers) AS answers, "
            "(SELECT COUNT(*) FROM ratings) AS ratings, "
            "(SELECT COUNT(*) FROM ratings WHERE thumb = 1 OR stars >= 4) AS positive, "
            "(SELECT COUNT(*) FROM ratings WHERE thumb = -1 OR stars <= 2) AS negative, "
            "(SELECT COUNT(*) FROM comparisons WHERE tie = 0) AS comparisons, "
            "(SELECT COUNT(*) FROM ratings WHERE correction IS NOT NULL) AS corrections",
        )
        return counts or FeedbackCounts()
