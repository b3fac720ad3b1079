/*
 * JNI glue for dev.scannlite.Searcher: the C library's calls, one for one, with its errors
 * turned into ScannliteException(status, message) carrying the library's own message
 * (docs/android.md). The index reads the caller's direct ByteBuffer in place; the Java object
 * keeps that buffer reachable until close().
 */
#include <jni.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "scannlite.h"

#define ERR_SIZE 512

static void throw_status(JNIEnv *env, scannlite_status status, const char *message) {
  if ((*env)->ExceptionCheck(env)) return; /* a pending Java exception says more */
  jclass cls = (*env)->FindClass(env, "dev/scannlite/ScannliteException");
  if (cls == NULL) return; /* NoClassDefFoundError pending */
  jmethodID ctor = (*env)->GetMethodID(env, cls, "<init>", "(ILjava/lang/String;)V");
  if (ctor == NULL) return;
  jstring msg = (*env)->NewStringUTF(env, message != NULL && message[0] ? message : "libscannlite failed");
  if (msg == NULL) return;
  jobject exc = (*env)->NewObject(env, cls, ctor, (jint)status, msg);
  if (exc != NULL) (*env)->Throw(env, (jthrowable)exc);
}

static void throw_java(JNIEnv *env, const char *class_name, const char *message) {
  if ((*env)->ExceptionCheck(env)) return;
  jclass cls = (*env)->FindClass(env, class_name);
  if (cls != NULL) (*env)->ThrowNew(env, cls, message);
}

static const scannlite_index *index_of(jlong handle) {
  return (const scannlite_index *)(uintptr_t)handle;
}

JNIEXPORT jlong JNICALL Java_dev_scannlite_Searcher_nativeOpen(JNIEnv *env, jclass cls, jobject buffer,
                                                                jlong length) {
  (void)cls;
  void *data = (*env)->GetDirectBufferAddress(env, buffer);
  jlong capacity = (*env)->GetDirectBufferCapacity(env, buffer);
  if (data == NULL && capacity != 0) {
    throw_java(env, "java/lang/IllegalArgumentException", "the ByteBuffer has no native address (not direct)");
    return 0;
  }
  if (length < 0 || length > capacity) {
    throw_java(env, "java/lang/IllegalArgumentException", "length outside the ByteBuffer");
    return 0;
  }
  char err[ERR_SIZE] = {0};
  scannlite_index *index = NULL;
  /* An empty buffer may have no address: hand the library a valid pointer and size 0. */
  static const unsigned char empty[1] = {0};
  scannlite_status st = scannlite_open(data != NULL ? data : empty, (size_t)length, &index, err, sizeof err);
  if (st != SCANNLITE_OK) {
    throw_status(env, st, err);
    return 0;
  }
  return (jlong)(uintptr_t)index;
}

JNIEXPORT void JNICALL Java_dev_scannlite_Searcher_nativeClose(JNIEnv *env, jclass cls, jlong handle) {
  (void)env;
  (void)cls;
  scannlite_close((scannlite_index *)(uintptr_t)handle);
}

JNIEXPORT jlongArray JNICALL Java_dev_scannlite_Searcher_nativeInfo(JNIEnv *env, jclass cls, jlong handle) {
  (void)cls;
  scannlite_info info;
  /* Reads nothing: the item count (info.size, 0 here until counted) is nativeCount's. */
  scannlite_status st = scannlite_peek_info(index_of(handle), &info);
  if (st != SCANNLITE_OK) {
    throw_status(env, st, "scannlite_peek_info failed");
    return NULL;
  }
  jlong values[7] = {(jlong)info.dimension, (jlong)info.size, (jlong)info.num_leaves,
                     (jlong)info.leaves_to_search, (jlong)info.distance, (jlong)info.lookup,
                     (jlong)info.num_subspaces};
  jlongArray out = (*env)->NewLongArray(env, 7);
  if (out != NULL) (*env)->SetLongArrayRegion(env, out, 0, 7, values);
  return out;
}

JNIEXPORT jlong JNICALL Java_dev_scannlite_Searcher_nativeCount(JNIEnv *env, jclass cls, jlong handle) {
  (void)cls;
  char err[256];
  uint64_t n = 0;
  scannlite_status st = scannlite_count_items(index_of(handle), &n, err, sizeof err);
  if (st != SCANNLITE_OK) {
    throw_status(env, st, err);
    return 0;
  }
  return (jlong)n;
}

static jbyteArray byte_array(JNIEnv *env, const uint8_t *data, size_t size) {
  if (size > (size_t)INT32_MAX) {
    throw_java(env, "java/lang/OutOfMemoryError", "metadata larger than a Java array");
    return NULL;
  }
  jbyteArray out = (*env)->NewByteArray(env, (jsize)size);
  if (out != NULL && size > 0) (*env)->SetByteArrayRegion(env, out, 0, (jsize)size, (const jbyte *)data);
  return out;
}

JNIEXPORT jbyteArray JNICALL Java_dev_scannlite_Searcher_nativeUserInfo(JNIEnv *env, jclass cls, jlong handle) {
  (void)cls;
  const uint8_t *data = NULL;
  size_t size = 0;
  scannlite_status st = scannlite_user_info(index_of(handle), &data, &size);
  if (st != SCANNLITE_OK) {
    throw_status(env, st, "scannlite_user_info failed");
    return NULL;
  }
  return byte_array(env, data, size);
}

JNIEXPORT jbyteArray JNICALL Java_dev_scannlite_Searcher_nativeMetadata(JNIEnv *env, jclass cls, jlong handle,
                                                                       jlong id) {
  (void)cls;
  const uint8_t *data = NULL;
  size_t size = 0;
  if (id < 0) {
    throw_status(env, SCANNLITE_ERROR_NOT_FOUND, "no item with a negative id");
    return NULL;
  }
  scannlite_status st = scannlite_metadata(index_of(handle), (uint64_t)id, &data, &size);
  if (st != SCANNLITE_OK) {
    throw_status(env, st, st == SCANNLITE_ERROR_NOT_FOUND ? "no metadata for this id" : "scannlite_metadata failed");
    return NULL;
  }
  return byte_array(env, data, size);
}

/* One search (allow == NULL) or filtered search; results copied into the Java arrays. */
static jint do_search(JNIEnv *env, jlong handle, jfloatArray query, jint k, jint leaves, jlongArray allow,
                      jlongArray ids, jfloatArray distances, jobjectArray metadata) {
  jsize dim = (*env)->GetArrayLength(env, query);
  jsize capacity = (*env)->GetArrayLength(env, ids);
  if (k > capacity || (*env)->GetArrayLength(env, distances) < capacity ||
      (*env)->GetArrayLength(env, metadata) < capacity) {
    throw_java(env, "java/lang/IllegalArgumentException", "result arrays shorter than k");
    return 0;
  }
  jsize nallow = allow != NULL ? (*env)->GetArrayLength(env, allow) : 0;
  /* Copies: the search may take a while, and a critical section would hold off GC. */
  float *q = malloc(dim > 0 ? (size_t)dim * sizeof(float) : 1);
  scannlite_result *results = malloc(k > 0 ? (size_t)k * sizeof(scannlite_result) : 1);
  uint64_t *allowed = malloc(nallow > 0 ? (size_t)nallow * sizeof(uint64_t) : 1);
  if (q == NULL || results == NULL || allowed == NULL) {
    free(q);
    free(results);
    free(allowed);
    throw_java(env, "java/lang/OutOfMemoryError", "scannlite: query, allow-list or result buffer");
    return 0;
  }
  if (dim > 0) (*env)->GetFloatArrayRegion(env, query, 0, dim, q);
  if (nallow > 0) (*env)->GetLongArrayRegion(env, allow, 0, nallow, (jlong *)allowed);
  char err[ERR_SIZE] = {0};
  int32_t count = 0;
  scannlite_status st =
      allow != NULL ? scannlite_search_filtered(index_of(handle), q, (size_t)dim, (int32_t)k, (uint32_t)leaves, allowed,
                                                (size_t)nallow, results, &count, err, sizeof err)
                    : scannlite_search(index_of(handle), q, (size_t)dim, (int32_t)k, (uint32_t)leaves, results, &count,
                                       err, sizeof err);
  free(q);
  free(allowed);
  if (st != SCANNLITE_OK) {
    free(results);
    throw_status(env, st, err);
    return 0;
  }
  for (int32_t i = 0; i < count; i++) {
    jlong id = (jlong)results[i].id;
    jfloat d = results[i].distance;
    (*env)->SetLongArrayRegion(env, ids, i, 1, &id);
    (*env)->SetFloatArrayRegion(env, distances, i, 1, &d);
    jbyteArray md = byte_array(env, results[i].metadata, results[i].metadata_size);
    if (md == NULL) {
      free(results);
      return 0; /* OutOfMemoryError pending */
    }
    (*env)->SetObjectArrayElement(env, metadata, i, md);
    (*env)->DeleteLocalRef(env, md);
  }
  free(results);
  return (jint)count;
}

JNIEXPORT jint JNICALL Java_dev_scannlite_Searcher_nativeSearch(JNIEnv *env, jclass cls, jlong handle,
                                                                jfloatArray query, jint k, jint leaves,
                                                                jlongArray ids, jfloatArray distances,
                                                                jobjectArray metadata) {
  (void)cls;
  return do_search(env, handle, query, k, leaves, NULL, ids, distances, metadata);
}

JNIEXPORT jint JNICALL Java_dev_scannlite_Searcher_nativeSearchFiltered(JNIEnv *env, jclass cls, jlong handle,
                                                                        jfloatArray query, jint k, jint leaves,
                                                                        jlongArray allow, jlongArray ids,
                                                                        jfloatArray distances, jobjectArray metadata) {
  (void)cls;
  return do_search(env, handle, query, k, leaves, allow, ids, distances, metadata);
}

JNIEXPORT void JNICALL Java_dev_scannlite_Searcher_nativeL2Normalize(JNIEnv *env, jclass cls, jfloatArray vector) {
  (void)cls;
  jsize n = (*env)->GetArrayLength(env, vector);
  if (n == 0) return;
  jfloat *v = (*env)->GetFloatArrayElements(env, vector, NULL);
  if (v == NULL) return; /* OutOfMemoryError pending */
  scannlite_l2_normalize(v, (size_t)n);
  (*env)->ReleaseFloatArrayElements(env, vector, v, 0);
}

JNIEXPORT jstring JNICALL Java_dev_scannlite_Searcher_nativeVersion(JNIEnv *env, jclass cls) {
  (void)cls;
  return (*env)->NewStringUTF(env, scannlite_version());
}
