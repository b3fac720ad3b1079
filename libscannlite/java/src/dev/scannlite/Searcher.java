package dev.scannlite;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A TFLite Searcher bundle (or a bare on-device ScaNN index, ".ldb") opened by libscannlite,
 * searched bit-exactly as the TFLite Task Library would (see docs/android.md).
 *
 * <p>The index is read in place from a direct {@link ByteBuffer} (a mapped file or asset: zero
 * copy). The buffer must not change while the Searcher is open; this object keeps a reference to
 * it, so it cannot be collected while the native index still points into it.
 *
 * <p>Thread safety: any number of threads may search at once; {@link #close()} waits for
 * searches in progress and later calls fail with IllegalStateException.
 *
 * <p>The native library is {@code libscannlite_jni.so}, loaded with
 * {@code System.loadLibrary("scannlite_jni")}, or from the path in the system property
 * {@code dev.scannlite.library} when that is set.
 */
public final class Searcher implements AutoCloseable {
    static {
        String path = System.getProperty("dev.scannlite.library");
        if (path != null && !path.isEmpty()) {
            System.load(path);
        } else {
            System.loadLibrary("scannlite_jni");
        }
    }

    /** Distance measures (scannlite_distance). */
    public static final int SQUARED_L2 = 0;
    public static final int DOT_PRODUCT = 1;
    /** Lookup types (scannlite_lookup); LOOKUP_NONE: a float (linear) index. */
    public static final int LOOKUP_FLOAT = 0;
    public static final int LOOKUP_INT16 = 1;
    public static final int LOOKUP_INT8 = 2;
    public static final int LOOKUP_NONE = -1;

    /** Above this k, a search's result arrays are sized by the item count rather than by k. */
    private static final int COUNT_ABOVE_K = 1 << 16;

    private final ByteBuffer buffer; // kept alive: the native index reads it in place
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private long handle;
    private final int dimension;
    private volatile long size = -1; // counted on first use: opening locates no leaf
    private final int numLeaves;
    private final int leavesToSearch;
    private final int distance;
    private final int lookup;
    private final int numSubspaces;

    private Searcher(ByteBuffer buffer, long handle) {
        this.buffer = buffer;
        this.handle = handle;
        long[] info = nativeInfo(handle);
        this.dimension = (int) info[0];
        this.numLeaves = (int) info[2];
        this.leavesToSearch = (int) info[3];
        this.distance = (int) info[4];
        this.lookup = (int) info[5];
        this.numSubspaces = (int) info[6];
    }

    /**
     * Open the bundle or index held in {@code buffer} between its position and its limit.
     *
     * @throws IllegalArgumentException if the buffer is not direct
     * @throws ScannliteException with the library's message if the bytes are not a searchable
     *     bundle or index
     */
    public static Searcher open(ByteBuffer buffer) {
        if (buffer == null) {
            throw new NullPointerException("buffer");
        }
        if (!buffer.isDirect()) {
            throw new IllegalArgumentException("a Searcher reads its index in place: give it a direct or mapped ByteBuffer");
        }
        ByteBuffer view = buffer.slice(); // position 0 .. remaining(), independent of later moves
        long h = nativeOpen(view, view.remaining());
        try {
            return new Searcher(view, h);
        } catch (RuntimeException | Error e) {
            nativeClose(h);
            throw e;
        }
    }

    /** Map {@code path} read-only and open it (the mapping lives as long as the Searcher). */
    public static Searcher open(Path path) throws IOException {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            return open(channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size()));
        }
    }

    /** The k nearest items, in ascending distance, with the index's own leaves to search. */
    public SearchResult[] search(float[] query, int k) {
        return search(query, k, 0);
    }

    /**
     * The k nearest items; {@code leavesToSearch} 0 uses the index's own, another value
     * overrides it (clamped to the number of leaves). Fewer than k come back when the searched
     * leaves hold fewer items. The query is used as given: call {@link #l2Normalize} first where
     * the embedder's l2_normalize option would be set.
     */
    public SearchResult[] search(float[] query, int k, int leavesToSearch) {
        return run(query, k, leavesToSearch, null);
    }

    /**
     * The k nearest items whose ids are in {@code allow} (any order, duplicates ignored), among
     * the searched leaves; {@code leavesToSearch} -1 searches every leaf (exact over the allowed
     * items). Not a Task Library feature: the library checks it against brute force.
     */
    public SearchResult[] search(float[] query, int k, int leavesToSearch, long[] allow) {
        if (allow == null) {
            throw new NullPointerException("allow");
        }
        return run(query, k, leavesToSearch, allow);
    }

    private SearchResult[] run(float[] query, int k, int leavesToSearch, long[] allow) {
        if (query == null) {
            throw new NullPointerException("query");
        }
        lock.readLock().lock();
        try {
            long h = openHandle();
            // At most size results (or allow.length) exist: a huge k must not allocate hugely
            // here, so only such a k counts the items (which locates every leaf).
            long bound = allow == null ? k : Math.min(k, allow.length);
            if (bound > COUNT_ABOVE_K) {
                bound = Math.min(bound, size());
            }
            int capacity = k <= 0 ? k : (int) Math.max(1, Math.min(k, bound));
            int n0 = Math.max(capacity, 0);
            long[] ids = new long[n0];
            float[] distances = new float[n0];
            byte[][] metadata = new byte[n0][];
            int n = allow == null
                    ? nativeSearch(h, query, capacity, leavesToSearch, ids, distances, metadata)
                    : nativeSearchFiltered(h, query, capacity, leavesToSearch, allow, ids, distances, metadata);
            SearchResult[] out = new SearchResult[n];
            for (int i = 0; i < n; i++) {
                out[i] = new SearchResult(ids[i], distances[i], metadata[i]);
            }
            return out;
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The metadata bytes of item {@code id} (ScannliteException NOT_FOUND if it has none). */
    public byte[] metadata(long id) {
        lock.readLock().lock();
        try {
            return nativeMetadata(openHandle(), id);
        } finally {
            lock.readLock().unlock();
        }
    }

    /** USER_INFO bytes (empty when the index has none). */
    public byte[] userInfo() {
        lock.readLock().lock();
        try {
            return nativeUserInfo(openHandle());
        } finally {
            lock.readLock().unlock();
        }
    }

    /** The query's length in floats. */
    public int dimension() {
        return dimension;
    }

    /**
     * Items in the index. Opening reads no leaf, so the first call counts them: it locates every
     * leaf in its block (about two pages of the file each); later calls read nothing.
     *
     * @throws ScannliteException if a leaf's block is damaged (as searches visiting it fail)
     */
    public long size() {
        long n = size;
        if (n >= 0) {
            return n;
        }
        lock.readLock().lock();
        try {
            n = nativeCount(openHandle());
        } finally {
            lock.readLock().unlock();
        }
        size = n;
        return n;
    }

    public int numLeaves() {
        return numLeaves;
    }

    /** The leaves a search visits by default, as the device computes them from search_fraction. */
    public int leavesToSearch() {
        return leavesToSearch;
    }

    /** SQUARED_L2 or DOT_PRODUCT. */
    public int distance() {
        return distance;
    }

    /** LOOKUP_FLOAT, LOOKUP_INT16, LOOKUP_INT8 or LOOKUP_NONE. */
    public int lookup() {
        return lookup;
    }

    /** Bytes per item of an asymmetric-hashing index, else 0. */
    public int numSubspaces() {
        return numSubspaces;
    }

    /** The buffer the index is read from (read-only view). */
    public ByteBuffer buffer() {
        return buffer.asReadOnlyBuffer();
    }

    /** The Task Library's l2_normalize, bit for bit, in place (a zero vector stays as it is). */
    public static void l2Normalize(float[] vector) {
        if (vector == null) {
            throw new NullPointerException("vector");
        }
        nativeL2Normalize(vector);
    }

    /** libscannlite's version string. */
    public static String version() {
        return nativeVersion();
    }

    /** Free the native index; searches in progress finish first. Idempotent. */
    @Override
    public void close() {
        lock.writeLock().lock();
        try {
            if (handle != 0) {
                nativeClose(handle);
                handle = 0;
            }
        } finally {
            lock.writeLock().unlock();
        }
    }

    private long openHandle() {
        if (handle == 0) {
            throw new IllegalStateException("this Searcher is closed");
        }
        return handle;
    }

    private static native long nativeOpen(ByteBuffer buffer, long length);

    private static native void nativeClose(long handle);

    private static native long[] nativeInfo(long handle);

    private static native long nativeCount(long handle);

    private static native byte[] nativeUserInfo(long handle);

    private static native byte[] nativeMetadata(long handle, long id);

    private static native int nativeSearch(long handle, float[] query, int k, int leavesToSearch,
                                           long[] ids, float[] distances, byte[][] metadata);

    private static native int nativeSearchFiltered(long handle, float[] query, int k, int leavesToSearch,
                                                   long[] allow, long[] ids, float[] distances, byte[][] metadata);

    private static native void nativeL2Normalize(float[] vector);

    private static native String nativeVersion();
}
