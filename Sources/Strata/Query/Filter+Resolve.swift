// A filter bound to a segment that lacks some of the columns it names. A collection's schema may
// grow (SchemaGrowth.swift): segments written before hold only the first columns, and their rows
// read the others as null. A condition on such a column is then a constant, exactly as the
// reference evaluation (`Filter.matches`) gives it on a null value: `isNull` true; `match`,
// `matchAny`, `range` and `prefix` false. The constants are folded out (must / should / must_not
// composed as usual), so the segment's planner only ever sees columns it has.
import StrataFormat

/// What a filter becomes on one segment.
package enum ResolvedFilter: Sendable, Equatable {
    /// Every row passes: search without a filter.
    case all
    /// No row passes: nothing to search.
    case none
    /// This filter, which names only columns the segment has.
    case filter(Filter)
}

extension Filter {
    /// This filter on a segment of schema `segmentSchema`: conditions on columns the segment lacks
    /// are evaluated as on a null value and folded away. A filter that names only columns the
    /// segment has comes back unchanged (`.filter(self)`).
    package func resolved(forSegment segmentSchema: SegmentSchema) -> ResolvedFilter {
        let present = Set(segmentSchema.columns.map(\.name))
        guard namesAbsentColumn(present) else { return .filter(self) }
        return resolved(present)
    }

    private func namesAbsentColumn(_ present: Set<String>) -> Bool {
        (must + should + mustNot).contains { c in
            if case .filter(let f) = c { return f.namesAbsentColumn(present) }
            return c.key.map { !present.contains($0) } ?? false
        }
    }

    fileprivate func resolved(_ present: Set<String>) -> ResolvedFilter {
        var out = Filter()
        for c in must {
            switch c.resolved(present) {
            case .constant(true): continue
            case .constant(false): return .none
            case .condition(let x): out.must.append(x)
            }
        }
        if !should.isEmpty {
            var satisfied = false
            for c in should {
                switch c.resolved(present) {
                case .constant(true): satisfied = true
                case .constant(false): continue
                case .condition(let x): out.should.append(x)
                }
            }
            // One condition that always holds satisfies the clause; none that can hold fails it.
            if satisfied { out.should = [] } else if out.should.isEmpty { return .none }
        }
        for c in mustNot {
            switch c.resolved(present) {
            case .constant(true): return .none
            case .constant(false): continue
            case .condition(let x): out.mustNot.append(x)
            }
        }
        return out.isEmpty ? .all : .filter(out)
    }
}

extension FilterCondition {
    /// A condition resolved against the columns a segment has.
    fileprivate enum Resolved {
        case constant(Bool)
        case condition(FilterCondition)
    }

    fileprivate func resolved(_ present: Set<String>) -> Resolved {
        switch self {
        case .filter(let f):
            switch f.resolved(present) {
            case .all: return .constant(true)
            case .none: return .constant(false)
            case .filter(let g): return .condition(.filter(g))
            }
        case .isNull(let key):
            return present.contains(key) ? .condition(self) : .constant(true)
        case .match(let key, _), .matchAny(let key, _), .range(let key, _), .prefix(let key, _, _):
            return present.contains(key) ? .condition(self) : .constant(false)
        }
    }
}
