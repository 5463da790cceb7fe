/* Chinese search: a query of joined words (策略梯度定理) is split against the index.
 *
 * Sphinx indexes Chinese with jieba, but its search page splits a query only at spaces and
 * punctuation, so a query of joined words finds nothing unless it is one indexed word.
 * searchtools.js keeps a splitQuery defined before it; this one splits every run of CJK
 * characters by forward maximum matching against the index's own terms (the words jieba
 * produced at build time), and leaves everything else as Sphinx does. Loaded on the
 * search page of the Chinese edition only, before searchtools.js.
 */
var splitQuery = (query) => {
  const words = query
    .split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu)
    .filter((term) => term);
  const index = (typeof Search !== "undefined" && Search._index) || null;
  if (!index) return words;
  const known = (w) => w in index.terms || w in index.titleterms;
  const out = [];
  for (const word of words) {
    if (!/\p{Script=Han}/u.test(word) || known(word)) {
      out.push(word);
      continue;
    }
    let i = 0;
    while (i < word.length) {
      let j = word.length;
      while (j > i + 1 && !known(word.slice(i, j))) j -= 1;
      if (known(word.slice(i, j))) out.push(word.slice(i, j)); // unknown single characters
      i = j; //                                       (的, 是 …) are not indexed: dropped
    }
  }
  return out;
};
