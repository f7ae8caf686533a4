-- the slow one: a few million rows hashed, so it is the slowest model by a wide margin
select i, i % 97 as bucket, md5(i::varchar) as digest
from range(3000000) as t(i)
