"""Evidence selection as a pure function: fused ranks, duplicates, k and the token budget."""

from __future__ import annotations

from dataclasses import dataclass

from sleuth.agent.research.evidence import Ranking, select_evidence


@dataclass
class P:
    id: int
    text: str
    uri: str = ""
    title: str | None = None
    source_id: int = 0
    kind: str = "file"

    def __post_init__(self):
        self.uri = self.uri or f"/notes/{self.id}.md"


A = P(1, "Lyon was founded by Plancus in 43 BC.")
B = P(2, "The Rhône meets the Saône at Lyon.")
C = P(3, "Plancus was a Roman senator and consul.")
D = P(4, "Bread is made from flour and water.")


def select(rankings, k=8, budget=10_000, cost=lambda item: 10, reserve=0, each_best=False):
    return select_evidence(
        rankings, k=k, token_budget=budget, cost=cost, reserve=reserve, each_best=each_best
    )


def test_reciprocal_rank_fusion_by_hand():
    # RRF_K = 10. Question (weight 2): A, B, C. Sub-question (weight 1): C, D.
    # A = 2/11 = .182, B = 2/12 = .167, C = 2/13 + 1/11 = .245, D = 1/12 = .083
    chosen = select([Ranking("question", [A, B, C], 2.0), Ranking("sub", [C, D])])
    assert [i["chunk_id"] for i in chosen.items] == [3, 1, 2, 4]
    assert [i["number"] for i in chosen.items] == [1, 2, 3, 4]
    assert [i["score"] for i in chosen.items] == [0.24476, 0.18182, 0.16667, 0.08333]
    assert [i["subquestion"] for i in chosen.items] == ["question"] * 3 + ["sub"]
    assert chosen.items[0]["text"] == C.text and chosen.items[0]["snippet"] == C.text
    assert chosen.tokens == 40 and chosen.dropped_duplicates == 0


def test_near_duplicates_are_dropped_and_counted():
    mirror = P(5, "Lyon was founded by Plancus in 43 BC!", uri="https://mirror.example/lyon")
    chosen = select([Ranking("q", [A, mirror, B])])
    assert [i["chunk_id"] for i in chosen.items] == [1, 2]
    assert chosen.dropped_duplicates == 1


def test_k_and_the_token_budget_bound_the_selection():
    assert [i["chunk_id"] for i in select([Ranking("q", [A, B, C, D])], k=2).items] == [1, 2]
    # B costs too much for what is left after A; C, smaller, still fits below it.
    cost = {A.text: 50, B.text: 60, C.text: 40, D.text: 10}
    chosen = select([Ranking("q", [A, B, C, D])], budget=100, cost=lambda i: cost[i["text"]])
    assert [i["chunk_id"] for i in chosen.items] == [1, 3, 4]
    assert chosen.tokens == 100
    assert select([], k=3).items == []


def test_the_questions_own_best_passages_are_never_crowded_out():
    # Three sub-questions that agree on C and D lift them above the question's own A and B:
    # C = 2/13 + 3/11 = .427, D = 3/12 = .25, A = 2/11 = .182, B = 2/12 = .167. With k=3 and
    # nothing reserved, B is crowded out; the question's best two are taken first otherwise.
    subs = [Ranking(f"sub {n}", [C, D]) for n in (1, 2, 3)]
    rankings = [Ranking("question", [A, B, C], 2.0), *subs]
    assert [i["chunk_id"] for i in select(rankings, k=3).items] == [3, 4, 1]
    kept = select(rankings, k=3, reserve=2)
    assert [i["chunk_id"] for i in kept.items] == [1, 2, 3]
    assert [i["number"] for i in kept.items] == [1, 2, 3]
    # The reserve is still bound by k, and a reserve past the list is no error.
    assert [i["chunk_id"] for i in select(rankings, k=1, reserve=2).items] == [1]
    assert len(select([Ranking("question", [A])], reserve=4).items) == 1


def test_each_sub_questions_best_passage_follows_the_reserve():
    # A bridge query's one find (D) ranks below the question's third passage in the fused
    # order (1/11 = .091 against 2/13 = .154); with each_best it is shown before it.
    rankings = [Ranking("question", [A, B, C], 2.0), Ranking("bridge", [D])]
    assert [i["chunk_id"] for i in select(rankings, k=3, reserve=2).items] == [1, 2, 3]
    chosen = select(rankings, k=3, reserve=2, each_best=True)
    assert [i["chunk_id"] for i in chosen.items] == [1, 2, 4]
    assert chosen.items[2]["subquestion"] == "bridge"


def test_a_bridge_query_adds_the_passage_it_names_not_the_one_that_named_it():
    # "Plancus consul" joins a name the question's passage A gave to the question's words, so
    # A ranks first for it too; what it was run to find is Plancus's own passage (titled
    # "Plancus (senator)"), shown before the fused order's C.
    named = P(5, "Plancus served as consul in 42 BC.", title="Plancus (senator)")
    other = P(6, "A consul was the highest elected office.", title="Roman consul")
    rankings = [Ranking("question", [A, C], 2.0), Ranking("Plancus consul", [A, other, named])]
    chosen = select(rankings, k=3, reserve=1, each_best=True)
    assert [i["chunk_id"] for i in chosen.items] == [1, 5, 3]
    assert chosen.items[1]["subquestion"] == "Plancus consul"
    # No passage it names: its best, as before (A, taken already, adds nothing).
    unnamed = [Ranking("question", [A, C], 2.0), Ranking("Plancus consul", [A, other])]
    kept = select(unnamed, k=3, reserve=1, each_best=True)
    assert [i["chunk_id"] for i in kept.items] == [1, 3, 6]


def test_a_title_names_its_subject_before_a_comma_too():
    # "Kestrel Bay, Maine" is the passage "Kestrel Bay population" was run to find.
    named = P(5, "Kestrel Bay is a town of 4,000 people.", title="Kestrel Bay, Maine")
    other = P(6, "Population figures come from the census.", title="Census")
    rankings = [
        Ranking("question", [A, C], 2.0),
        Ranking("Kestrel Bay population", [A, other, named]),
    ]
    chosen = select(rankings, k=3, reserve=1, each_best=True)
    assert [i["chunk_id"] for i in chosen.items] == [1, 5, 3]
