"""The functions a query sent to the gateway may call: an ALLOW-list of pure functions.

Pure means the result depends only on the arguments (and the clock): nothing
here reads or writes files, the network, the process, settings, dictionaries,
other tables or other databases.  Anything not listed is refused by name, so a
function added to a future engine version is refused until someone reads what
it does and adds it here.

Deliberately left out (examples, not the rule — the rule is "not listed"):
``file``, ``url``, ``remote*``, ``s3*``, ``cluster*``, ``input``,
``executable``, ``dictGet*``/``dictHas``, ``joinGet``, ``hasColumnInTable``,
``currentUser``/``currentDatabase``/``hostName``/``version``/``uptime``,
``getSetting``/``getServerSetting``/``getMacro``, ``filesystem*``, ``sleep*``,
``throwIf`` (error messages built from data), ``transactionID``,
``initializeAggregation`` and ``*State`` combinators that take other tables,
``addressToLine``/``demangle`` (introspection), ``runningAccumulate``, ``arrayReduce``
(its aggregate is named by a string the checker cannot see into).
"""

from __future__ import annotations

_ARITHMETIC = """
plus minus multiply divide intDiv intDivOrZero modulo moduloOrZero negate abs gcd lcm
round roundBankers floor ceil ceiling trunc truncate sqrt cbrt exp exp2 exp10 log ln log2 log10 log1p pow power
sign least greatest e pi isNaN isInfinite isFinite ifNotFinite
bitAnd bitOr bitXor bitNot bitShiftLeft bitShiftRight bitCount
equals notEquals less greater lessOrEquals greaterOrEquals and or not xor
if multiIf ifNull nullIf coalesce isNull isNotNull assumeNotNull toNullable isZeroOrNull
""".split()

_TYPES = """
CAST toString toFixedString toInt8 toInt16 toInt32 toInt64 toInt128 toInt256
toUInt8 toUInt16 toUInt32 toUInt64 toUInt128 toUInt256 toFloat32 toFloat64
toInt8OrZero toInt16OrZero toInt32OrZero toInt64OrZero toUInt8OrZero toUInt16OrZero toUInt32OrZero toUInt64OrZero
toFloat32OrZero toFloat64OrZero toInt32OrNull toInt64OrNull toUInt32OrNull toUInt64OrNull toFloat64OrNull
toDecimal32 toDecimal64 toDecimal128 toDecimal256 toDecimal64OrZero toDecimal64OrNull toDecimalString
toBool toUUID toUUIDOrNull toUUIDOrZero toTypeName reinterpretAsString toLowCardinality materialize
toIntervalSecond toIntervalMinute toIntervalHour toIntervalDay toIntervalWeek toIntervalMonth toIntervalYear
""".split()

_DATES = """
now now64 today yesterday toDate toDate32 toDateTime toDateTime64 toDateOrNull toDateTimeOrNull toDateTime64OrNull
toDateOrZero toDateTimeOrZero parseDateTimeBestEffort parseDateTimeBestEffortOrNull parseDateTime64BestEffort
parseDateTime64BestEffortOrNull toUnixTimestamp toUnixTimestamp64Milli toUnixTimestamp64Micro toUnixTimestamp64Nano
fromUnixTimestamp fromUnixTimestamp64Milli fromUnixTimestamp64Micro fromUnixTimestamp64Nano
toYear toQuarter toMonth toDayOfYear toDayOfMonth toDayOfWeek toHour toMinute toSecond toMillisecond
toYYYYMM toYYYYMMDD toYYYYMMDDhhmmss toISOWeek toISOYear toWeek toYearWeek
toStartOfYear toStartOfQuarter toStartOfMonth toStartOfWeek toMonday toStartOfDay toStartOfHour
toStartOfMinute toStartOfSecond toStartOfFiveMinutes toStartOfFiveMinute toStartOfTenMinutes
toStartOfFifteenMinutes toStartOfInterval toStartOfMillisecond toStartOfMicrosecond toLastDayOfMonth
toTimeZone toTimezone timeZoneOf timezoneOf toRelativeDayNum toRelativeHourNum toRelativeMinuteNum toRelativeSecondNum
dateDiff date_diff DATE_DIFF age dateTrunc date_trunc DATE_TRUNC dateAdd date_add DATE_ADD dateSub date_sub DATE_SUB
timestampAdd timestamp_add timestampSub timestamp_sub
addSeconds addMinutes addHours addDays addWeeks addMonths addYears addMilliseconds addMicroseconds addNanoseconds
subtractSeconds subtractMinutes subtractHours subtractDays subtractWeeks subtractMonths subtractYears
subtractMilliseconds formatDateTime formatDateTimeInJodaSyntax parseDateTime monthName
""".split()

_STRINGS = """
length lengthUTF8 char_length empty notEmpty lower upper lowerUTF8 upperUTF8 reverse reverseUTF8
concat concatWithSeparator substring substr substringUTF8 left right leftUTF8 rightUTF8 leftPad rightPad
trim trimLeft trimRight trimBoth ltrim rtrim position positionCaseInsensitive positionUTF8 locate
startsWith endsWith like notLike ilike notILike match extract extractAll extractAllGroups
replace replaceOne replaceAll replaceRegexpOne replaceRegexpAll regexpExtract multiSearchAny multiMatchAny
splitByChar splitByString splitByRegexp splitByWhitespace arrayStringConcat format repeat space
toValidUTF8 base64Encode base64Decode tryBase64Decode hex unhex lowerUTF8 countSubstrings
normalizeUTF8NFC ngramDistance domain domainWithoutWWW topLevelDomain protocol path pathFull
queryString fragment cutQueryString extractURLParameter extractURLParameters
""".split()

_JSON = """
JSONExtract JSONExtractString JSONExtractInt JSONExtractUInt JSONExtractFloat JSONExtractBool JSONExtractRaw
JSONExtractKeys JSONExtractArrayRaw JSONExtractKeysAndValues JSONHas JSONLength JSONType isValidJSON
simpleJSONExtractString simpleJSONExtractInt simpleJSONExtractUInt simpleJSONExtractFloat simpleJSONExtractBool
simpleJSONExtractRaw simpleJSONHas visitParamExtractString toJSONString
""".split()

_HASHES = """
cityHash64 sipHash64 sipHash128 xxHash32 xxHash64 xxh3 murmurHash2_64 murmurHash3_64 farmHash64
MD5 SHA1 SHA224 SHA256 halfMD5 intHash32 intHash64 rand rand64 randCanonical generateUUIDv4 generateUUIDv7
""".split()

_ARRAYS_MAPS_TUPLES = """
array arrayConcat arrayElement has hasAll hasAny hasSubstr indexOf countEqual arrayCount arrayExists arrayAll
arrayFilter arrayMap arrayFirst arrayLast arrayFirstIndex arraySum arrayAvg arrayMin arrayMax arrayProduct
arraySort arrayReverseSort arrayReverse arrayDistinct arrayUniq arrayEnumerate arrayEnumerateUniq arraySlice
arrayPushBack arrayPushFront arrayPopBack arrayPopFront arrayResize arrayCompact arrayZip arrayFlatten flatten
arrayIntersect arrayCumSum arrayDifference arrayJoin arrayStringConcat range emptyArrayString
emptyArrayUInt64 length notEmpty empty
map mapKeys mapValues mapContains mapContainsKey mapFilter mapApply mapFromArrays
tuple tupleElement untuple
""".split()

_AGGREGATES = """
count sum avg min max any anyLast anyHeavy argMin argMax uniq uniqExact uniqCombined uniqCombined64 uniqHLL12
groupArray groupUniqArray groupArraySample groupArrayInsertAt groupBitAnd groupBitOr groupBitXor
quantile quantiles quantileExact quantilesExact quantileExactInclusive quantileExactExclusive quantilesExactExclusive
quantileTiming quantilesTiming quantileTDigest quantilesTDigest quantileExactLow quantileExactHigh quantileExactWeighted
quantileDeterministic median medianExact stddevPop stddevSamp varPop varSamp covarPop covarSamp corr
topK topKWeighted sumWithOverflow sumMap minMap maxMap avgWeighted histogram simpleLinearRegression
boundingRatio entropy skewPop kurtPop first_value last_value any_value
""".split()

_WINDOW = """
row_number rank dense_rank percent_rank cume_dist ntile lagInFrame leadInFrame nth_value lag lead
""".split()

# -If, -Array, -OrNull... combinators on any aggregate above: sumIf, uniqExactIf, avgOrNull, countDistinct...
AGGREGATE_COMBINATORS = ("If", "Array", "Distinct", "OrNull", "OrDefault", "Merge", "ForEach")

AGGREGATES = frozenset(_AGGREGATES)
ALLOWED_FUNCTIONS = frozenset(_ARITHMETIC + _TYPES + _DATES + _STRINGS + _JSON + _HASHES + _ARRAYS_MAPS_TUPLES
                              + _AGGREGATES + _WINDOW)
_ALLOWED_LOWER = frozenset(name.lower() for name in ALLOWED_FUNCTIONS)
_AGGREGATES_LOWER = frozenset(name.lower() for name in AGGREGATES)


def function_allowed(name: str) -> bool:
    """True if ``name`` is an allowed pure function, or an allowed aggregate with combinators.

    Compared case-insensitively: a case variant of a listed name is either the
    same (case-insensitive) engine function or no function at all."""
    lowered = name.lower()
    if lowered in _ALLOWED_LOWER:
        return True
    base = name
    stripped = True
    while stripped:
        stripped = False
        for suffix in AGGREGATE_COMBINATORS:
            if len(base) > len(suffix) and base.endswith(suffix):
                base = base[: -len(suffix)]
                stripped = True
                if base.lower() in _AGGREGATES_LOWER:
                    return True
    return False
