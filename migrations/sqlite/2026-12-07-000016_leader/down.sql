DROP TABLE leader;
