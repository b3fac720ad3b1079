package dev.scannlite;

import java.util.Arrays;

/**
 * One nearest neighbour: the item's ordinal in the index (its metadata key M_&lt;id&gt;), its
 * distance as the Task Library reports it (DOT_PRODUCT: the negative dot product) and a copy of
 * its metadata bytes, so a result outlives the Searcher that found it (docs/android.md).
 */
public final class SearchResult {
    private final long id;
    private final float distance;
    private final byte[] metadata;

    SearchResult(long id, float distance, byte[] metadata) {
        this.id = id;
        this.distance = distance;
        this.metadata = metadata;
    }

    public long id() {
        return id;
    }

    public float distance() {
        return distance;
    }

    /** The metadata bytes (a fresh copy on every call; empty when the item has none). */
    public byte[] metadata() {
        return metadata.clone();
    }

    @Override
    public String toString() {
        return "SearchResult{id=" + id + ", distance=" + distance + ", metadata=" + metadata.length + " bytes}";
    }

    @Override
    public boolean equals(Object other) {
        if (!(other instanceof SearchResult)) {
            return false;
        }
        SearchResult o = (SearchResult) other;
        return id == o.id && Float.floatToIntBits(distance) == Float.floatToIntBits(o.distance)
                && Arrays.equals(metadata, o.metadata);
    }

    @Override
    public int hashCode() {
        return Long.hashCode(id) * 31 + Float.floatToIntBits(distance) * 17 + Arrays.hashCode(metadata);
    }
}
